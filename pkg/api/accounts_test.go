package api

import (
	"bytes"
	"encoding/base64"
	"errors"
	"html"
	"image"
	_ "image/png"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"

	"github.com/wactl/wactl/pkg/daemon"
	"github.com/wactl/wactl/pkg/dedupe"
)

func accountsOf(t *testing.T, r resp) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	list, _ := r.body["accounts"].([]any)
	for _, x := range list {
		m := x.(map[string]any)
		out[m["id"].(string)] = m
	}
	return out
}

// decodeQR reads the text back from a data:image/png;base64 URL.
func decodeQR(t *testing.T, url string) string {
	t.Helper()
	b64, ok := strings.CutPrefix(url, "data:image/png;base64,")
	if !ok {
		t.Fatalf("not a PNG data URL: %.40q", url)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	img, _, err := image.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_PURE_BARCODE: true}) // the PNG holds only the code: pure mode reads every valid one, the finder misses ~2 %
	if err != nil {
		t.Fatal(err)
	}
	return res.GetText()
}

func TestAccountsListQRDecodes(t *testing.T) {
	e := newEnv(t)
	qr := "2@AbCdEf0123456789+/=,x5dqWg7h3Zq0X1Yk2nP4oQ==,Zm9vYmFy,c2VjcmV0"
	e.wa.addAccount("acc1", "+40722000111", daemon.StateQRReady)
	e.wa.addAccount("acc2", "+40722000222", daemon.StateConnected)
	e.wa.setPairing("acc1", PairingState{QR: qr, IssuedAt: e.clk.Now()})
	r := e.do("GET", "/api/whatsapp/accounts", e.admin, nil)
	if r.code != 200 || r.body["success"] != true || r.str("requestId") == "" || r.str("waMode") != "active" || r.str("instanceId") != "inst-a" {
		t.Fatalf("%d %s", r.code, r.raw)
	}
	accs := accountsOf(t, r)
	a1 := accs["acc1"]
	if a1["status"] != "qr_ready" || a1["phone"] != "+40722000111" {
		t.Fatalf("acc1 %v", a1)
	}
	if got := decodeQR(t, a1["qrCode"].(string)); got != qr {
		t.Fatalf("QR decodes to %q, want %q", got, qr)
	}
	if a2 := accs["acc2"]; a2["status"] != "connected" || a2["qrCode"] != nil {
		t.Fatalf("acc2 %v", a2)
	}
	for _, k := range []string{"id", "name", "phone", "status", "qrCode", "pairingCode", "createdAt", "lastUpdate", "lastError"} {
		if _, ok := a1[k]; !ok {
			t.Errorf("account entry lacks %s", k)
		}
	}
}

// The app polls every 2 s from many devices; reads are never limited, and
// they do not use up the mutation budget either.
func TestAccountsPollingNeverLimited(t *testing.T) {
	e := newEnv(t, func(o *Options, d *Deps) { o.RatePerMinute, o.RateBurst = 1, 1 })
	e.wa.addAccount("acc1", "+40722000111", daemon.StateConnected)
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	start := time.Now()
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 250; i++ {
				r := e.do("GET", "/api/whatsapp/accounts", e.user, nil)
				mu.Lock()
				codes[r.code]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if codes[200] != 1000 {
		t.Fatalf("1000 polls answered %v", codes)
	}
	t.Logf("1000 polls in %v", time.Since(start))
	// Mutations of one principal are limited (burst 1)…
	if r := e.do("POST", "/api/whatsapp/disconnect/acc1", e.admin, nil); r.code != 200 {
		t.Fatalf("first mutation %d %s", r.code, r.raw)
	}
	r := e.do("POST", "/api/whatsapp/disconnect/acc1", e.admin, nil)
	if r.code != http.StatusTooManyRequests || r.str("error") != "rate_limited" || r.hdr.Get("Retry-After") == "" {
		t.Fatalf("second mutation %d %s", r.code, r.raw)
	}
	// …per principal: the service principal has its own bucket.
	if r := e.do("POST", "/api/whatsapp/disconnect/acc1", e.svc, nil); r.code != 200 {
		t.Fatalf("other principal limited: %d %s", r.code, r.raw)
	}
	if r := e.do("GET", "/api/whatsapp/accounts", e.admin, nil); r.code != 200 {
		t.Fatalf("read after limit: %d", r.code)
	}
	if r := e.do("GET", "/health", "", nil); r.code == http.StatusTooManyRequests {
		t.Fatal("health limited")
	}
}

func TestAddAccount(t *testing.T) {
	e := newEnv(t, func(o *Options, d *Deps) { o.MaxAccounts = 2 })
	r := e.do("POST", "/api/whatsapp/add-account", e.admin, map[string]any{"name": "Sales", "phone": "0722 000 111"})
	wantID := dedupe.AccountIDFromCanonical("prod", "+40722000111")
	acc, _ := r.body["account"].(map[string]any)
	if r.code != 200 || acc["id"] != wantID || acc["status"] != "connecting" || acc["qrCode"] != nil || acc["phone"] != "+40722000111" {
		t.Fatalf("%d %s", r.code, r.raw)
	}
	if len(e.wa.added) != 1 || e.wa.added[0].Phone != "+40722000111" || e.wa.added[0].Name != "Sales" {
		t.Fatalf("daemon got %+v", e.wa.added)
	}
	// The same phone again: the live account (parity_answers_test.go), not a new one.
	if r := e.do("POST", "/api/whatsapp/add-account", e.admin, map[string]any{"name": "Again", "phone": "+40722000111"}); r.code != 200 || len(e.wa.added) != 1 {
		t.Fatalf("duplicate phone: %d %s", r.code, r.raw)
	}
	if r := e.do("POST", "/api/whatsapp/add-account", e.admin, map[string]any{"name": "No phone"}); r.code != 200 {
		t.Fatalf("without phone: %d %s", r.code, r.raw)
	}
	r = e.do("POST", "/api/whatsapp/add-account", e.admin, map[string]any{"name": "Third", "phone": "+40722000333"})
	if r.code != http.StatusTooManyRequests || r.str("error") != "rate_limited" || r.body["maxAccounts"] != 2.0 || r.body["currentAccounts"] != 2.0 {
		t.Fatalf("past the limit: %d %s", r.code, r.raw)
	}
	bad := []struct {
		body any
		code int
		want string
	}{
		{`{"name":"x","phone":"+40722000444","extra":1}`, 400, `unknown field "extra"`},
		{`{"name":"x"} {}`, 400, "after the JSON object"},
		{`{"name":`, 400, "invalid JSON"},
		{``, 400, "empty body"},
		{map[string]any{"name": "x", "phone": "abc"}, 400, "character"},
		{map[string]any{"name": "x", "phone": "+123"}, 400, "8 to 15"},
		{map[string]any{"name": "x\x00y"}, 400, "control"},
		{map[string]any{"name": "x", "usePairingCode": true}, 400, "phone"},
		{`{"name":"` + strings.Repeat("a", 70<<10) + `"}`, 413, "bytes"},
	}
	for _, b := range bad {
		r := e.do("POST", "/api/whatsapp/add-account", e.admin, b.body)
		if r.code != b.code || !strings.Contains(r.str("message"), b.want) || r.str("requestId") == "" {
			t.Errorf("%.60v: %d %s", b.body, r.code, r.raw)
		}
	}
}

func TestPassiveMutations(t *testing.T) {
	e := newEnv(t)
	e.wa.addAccount("acc1", "+40722000111", daemon.StateConnected)
	e.wa.setActive(false)
	for _, rt := range [][2]string{
		{"POST", "/api/whatsapp/add-account"}, {"POST", "/api/whatsapp/send-message"},
		{"DELETE", "/api/whatsapp/accounts/acc1"}, {"POST", "/api/whatsapp/regenerate-qr/acc1"},
	} {
		r := e.do(rt[0], rt[1], e.admin, map[string]any{})
		if r.code != 503 || r.str("error") != "instance_passive" || r.str("mode") != "passive" || r.body["success"] != false ||
			r.str("instanceId") != "inst-a" || r.str("holderInstanceId") != "inst-b" || r.body["retryAfterSeconds"] != 42.0 {
			t.Errorf("%s %s: %d %s", rt[0], rt[1], r.code, r.raw)
		}
	}
	r := e.do("GET", "/api/whatsapp/accounts", e.user, nil)
	if r.code != 200 || r.str("waMode") != "passive" {
		t.Fatalf("read on passive: %d %s", r.code, r.raw)
	}
	if len(e.wa.calls) != 0 {
		t.Fatalf("passive instance called the daemon: %v", e.wa.calls)
	}
}

func TestRegenerateQR(t *testing.T) {
	e := newEnv(t)
	e.wa.addAccount("acc1", "+40722000111", daemon.StateNeedsQR)
	e.wa.addAccount("acc2", "+40722000222", daemon.StateConnected)
	path := "/api/whatsapp/regenerate-qr/"
	if r := e.do("POST", path+"nope", e.admin, nil); r.code != 404 {
		t.Fatalf("unknown: %d", r.code)
	}
	if r := e.do("POST", path+"acc2", e.admin, nil); r.code != http.StatusConflict {
		t.Fatalf("connected: %d", r.code)
	}
	// No pairing: starts one.
	r := e.do("POST", path+"acc1", e.admin, nil)
	if r.code != 200 || r.str("status") != "started" {
		t.Fatalf("start: %d %s", r.code, r.raw)
	}
	// A QR younger than 60 s comes back as is, without a new pairing.
	e.wa.setPairing("acc1", PairingState{QR: "2@fresh", IssuedAt: e.clk.Now().Add(-59 * time.Second)})
	r = e.do("POST", path+"acc1", e.admin, nil)
	if r.code != 200 || r.body["idempotent"] != true || decodeQR(t, r.str("qrCode")) != "2@fresh" {
		t.Fatalf("fresh: %d %s", r.code, r.raw)
	}
	if n := len(e.wa.calls); n != 1 {
		t.Fatalf("calls %v", e.wa.calls)
	}
	// Older while the pairing still runs: 202, nothing restarted.
	e.clk.Add(2 * time.Second)
	if r := e.do("POST", path+"acc1", e.admin, nil); r.code != 202 || r.str("status") != "already_in_progress" {
		t.Fatalf("stale QR: %d %s", r.code, r.raw)
	}
	// The pairing ended: a new one.
	e.wa.mu.Lock()
	delete(e.wa.pairing, "acc1")
	e.wa.mu.Unlock()
	if r := e.do("POST", path+"acc1", e.admin, nil); r.code != 200 || r.str("status") != "started" {
		t.Fatalf("after the pairing: %d %s", r.code, r.raw)
	}
	// The daemon says a start is running: 202.
	e.wa.setPairing("acc1", PairingState{InProgress: true})
	if r := e.do("POST", path+"acc1", e.admin, nil); r.code != 202 || r.str("status") != "already_in_progress" {
		t.Fatalf("in progress: %d %s", r.code, r.raw)
	}
	e.wa.mu.Lock()
	delete(e.wa.pairing, "acc1")
	e.wa.mu.Unlock()
	// Our own call in flight: 202 only while it runs.
	e.wa.mu.Lock()
	e.wa.regen = make(chan error)
	e.wa.mu.Unlock()
	first := make(chan resp)
	go func() { first <- e.do("POST", path+"acc1", e.svc, nil) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		e.wa.mu.Lock()
		n := len(e.wa.calls)
		e.wa.mu.Unlock()
		if n == 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if r := e.do("POST", path+"acc1", e.admin, nil); r.code != 202 {
		t.Fatalf("concurrent: %d %s", r.code, r.raw)
	}
	e.wa.regen <- errors.New("phone offline")
	if r := <-first; r.code != 500 {
		t.Fatalf("failed regeneration: %d %s", r.code, r.raw)
	}
	// Cleared on failure: the next call starts again.
	e.wa.mu.Lock()
	e.wa.regen = nil
	e.wa.mu.Unlock()
	if r := e.do("POST", path+"acc1", e.admin, nil); r.code != 200 || r.str("status") != "started" {
		t.Fatalf("after failure: %d %s", r.code, r.raw)
	}
	e.wa.mu.Lock()
	e.wa.regenErr = ErrPairingInProgress
	e.wa.mu.Unlock()
	if r := e.do("POST", path+"acc1", e.admin, nil); r.code != 202 {
		t.Fatalf("daemon in progress: %d %s", r.code, r.raw)
	}
}

func TestQRPage(t *testing.T) {
	e := newEnv(t)
	e.wa.addAccount("acc1", "+40722000111", daemon.StateQRReady)
	e.wa.addAccount("acc2", "+40722000222", daemon.StateConnected)
	e.wa.setPairing("acc1", PairingState{QR: "2@page", IssuedAt: e.clk.Now()})
	r := e.do("GET", "/api/whatsapp/qr/acc1", e.admin, nil)
	if r.code != 200 || !strings.HasPrefix(r.hdr.Get("Content-Type"), "text/html") || !strings.Contains(string(r.raw), `http-equiv="refresh"`) {
		t.Fatalf("%d %s", r.code, r.raw)
	}
	page := html.UnescapeString(string(r.raw))
	i := strings.Index(page, "data:image/png;base64,")
	j := strings.Index(page[i:], `"`)
	if i < 0 || decodeQR(t, page[i:i+j]) != "2@page" {
		t.Fatal("page QR does not decode")
	}
	for _, id := range []string{"acc2", "nope"} {
		if r := e.do("GET", "/api/whatsapp/qr/"+id, e.admin, nil); r.code != 404 || !strings.Contains(string(r.raw), "No QR code") {
			t.Fatalf("%s: %d %s", id, r.code, r.raw)
		}
	}
}

func TestAccountOps(t *testing.T) {
	e := newEnv(t)
	e.wa.addAccount("acc1", "+40722000111", daemon.StateConnected)
	for _, c := range []struct {
		method, path string
		body         any
		call, status string
	}{
		{"POST", "/api/whatsapp/disconnect/acc1", nil, "disconnect:acc1", "disconnected"},
		{"POST", "/api/whatsapp/accounts/acc1/reset", nil, "reset:acc1", "needs_qr"},
		{"PATCH", "/api/whatsapp/accounts/acc1/name", map[string]any{"name": "New"}, "rename:acc1", ""},
		{"DELETE", "/api/whatsapp/accounts/acc1", nil, "delete:acc1", "deleted"},
	} {
		r := e.do(c.method, c.path, e.admin, c.body)
		if r.code != 200 || r.str("status") != c.status || r.str("accountId") != "acc1" {
			t.Errorf("%s %s: %d %s", c.method, c.path, r.code, r.raw)
		}
		if last := e.wa.calls[len(e.wa.calls)-1]; last != c.call {
			t.Errorf("daemon call %q, want %q", last, c.call)
		}
	}
	// Deleted: gone from the list, and 404 afterwards.
	if accs := accountsOf(t, e.do("GET", "/api/whatsapp/accounts", e.admin, nil)); len(accs) != 0 {
		t.Fatalf("deleted account listed: %v", accs)
	}
	if r := e.do("POST", "/api/whatsapp/disconnect/acc1", e.admin, nil); r.code != 404 {
		t.Fatalf("after delete: %d", r.code)
	}
	if r := e.do("PATCH", "/api/whatsapp/accounts/acc1/name", e.admin, map[string]any{"name": ""}); r.code != 400 {
		t.Fatalf("empty name: %d", r.code)
	}
}

func TestCORS(t *testing.T) {
	e := newEnv(t, func(o *Options, d *Deps) { o.CORSOrigins = []string{"https://app.example.com"} })
	r := e.do("OPTIONS", "/api/whatsapp/accounts", "", nil, "Origin", "https://app.example.com", "Access-Control-Request-Method", "GET")
	if r.code != 204 || r.hdr.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Fatalf("preflight: %d %v", r.code, r.hdr)
	}
	if r := e.do("OPTIONS", "/api/whatsapp/accounts", "", nil, "Origin", "https://evil.example"); r.code != 403 || r.hdr.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("foreign origin: %d", r.code)
	}
	r = e.do("GET", "/api/whatsapp/accounts", e.user, nil, "Origin", "https://app.example.com")
	if r.hdr.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Fatal("no CORS header on the answer")
	}
	def := newEnv(t)
	if r := def.do("GET", "/api/whatsapp/accounts", def.user, nil, "Origin", "https://app.example.com"); r.hdr.Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("CORS allowed by default")
	}
}
