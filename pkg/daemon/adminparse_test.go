package daemon

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wactl/wactl/pkg/pair"
	"github.com/wactl/wactl/pkg/sessions"
)

const okID = "account_prod_0123456789abcdef0123456789abcdef"

var adminSeeds = []string{
	`{"accountId":"` + okID + `","name":"Shop","phone":"+40712345678"}`,
	`{"accountId":"` + okID + `","code":true,"force":true}`,
	`null`,
	``,
	`[]`,
	`{"accountId":"` + okID + `"} {"accountId":"x"}`,
	`{"accountId":"` + okID + `"}garbage`,
	`{"accountId":"` + okID + `","extra":1}`,
	`{"accountId":"../../etc"}`,
	`{"accountId":"account_prod_x/../y"}`,
	`{"accountId":"` + okID + `","phone":"40712345678"}`,
	`{"accountId":"` + okID + `","name":"evil\u202egnp.exe"}`,
	`{"accountId":"` + okID + `","name":"a\u0000b"}`,
	`{"accountId":` + strings.Repeat(`"x",`, 10) + `}`,
	`{"accountId":"` + okID + `","name":"` + strings.Repeat("x", 70<<10) + `"}`,
}

// TestAdminPairRequestRefusesBadInput: every refused seed is a 400 from
// the admin socket's handler, before anything reaches the sessions store.
func TestAdminPairRequestRefusesBadInput(t *testing.T) {
	for i, s := range adminSeeds {
		_, err := parsePairRequest(strings.NewReader(s))
		if (i < 2) != (err == nil) {
			t.Errorf("seed %d %.60q: err %v", i, s, err)
		}
	}
}

// FuzzAdminPairRequest feeds the admin socket's pair handler (on a
// PASSIVE daemon, so nothing pairs) arbitrary bodies: it never panics, a
// body the parser refuses is a 400, and an accepted request carries a
// valid account id, a canonical phone and a printable name, and survives a
// JSON round trip unchanged.
func FuzzAdminPairRequest(f *testing.F) {
	for _, s := range adminSeeds {
		f.Add([]byte(s))
	}
	a := &adminServer{d: &Daemon{mgr: NewManager(ManagerOptions{})}}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := parsePairRequest(bytes.NewReader(body))
		rec := httptest.NewRecorder()
		a.pair(rec, httptest.NewRequest(http.MethodPost, "/v1/pair", bytes.NewReader(body)))
		if err != nil {
			if rec.Code != http.StatusBadRequest {
				t.Fatalf("refused body answered %d", rec.Code)
			}
			return
		}
		if sessions.ValidAccountID(req.AccountID) != nil || canonicalPhone(req.Phone) != nil || printableName(req.Name) != nil {
			t.Fatalf("accepted an invalid request: %+v", req)
		}
		again, _ := json.Marshal(req)
		req2, err := parsePairRequest(bytes.NewReader(again))
		if err != nil || req2 != req {
			t.Fatalf("round trip: %+v -> %s -> %+v (%v)", req, again, req2, err)
		}
		var last pair.Event
		for _, line := range strings.Split(strings.TrimSpace(rec.Body.String()), "\n") {
			_ = json.Unmarshal([]byte(line), &last)
		}
		if rec.Code != http.StatusOK || last.Kind != pair.KindOutcome || !strings.Contains(last.Error, "PASSIVE") {
			t.Fatalf("accepted request on a PASSIVE daemon: %d %s", rec.Code, rec.Body)
		}
	})
}
