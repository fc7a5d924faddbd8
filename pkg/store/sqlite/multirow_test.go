package sqlite

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/wactl/wactl/pkg/store"
	"github.com/wactl/wactl/pkg/store/msgbuild"
	"github.com/wactl/wactl/pkg/store/storetest"
)

// TestHistoryGroupsMixNewAndKnown feeds multi-row groups in which some
// messages exist already — as live messages (derived documents), as app
// sends recorded under a requestId (aliases) — and checks every outcome:
// the insert's row count is all the group sees, so this is where a wrong
// guess about which rows were new would show.
func TestHistoryGroupsMixNewAndKnown(t *testing.T) {
	s, err := Open(t.Context(), Options{Dir: filepath.Join(t.TempDir(), "data")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	acc := "account_prod_groups"
	at := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 20 * multiRows
	hist := make([]store.Message, n)
	before := map[int]bool{}
	for i := range hist {
		hist[i] = storetest.Inbound(acc, i%7, fmt.Sprintf("3EB0%08X", rng.Uint32()), at.Add(time.Duration(i)*time.Second), fmt.Sprintf("m%d", i))
		hist[i].Source = "history_sync"
		// Group g has g×3 known messages (none in group 0: the all-new
		// path), spread over the group.
		if g := i / multiRows; (i%multiRows)*g%multiRows < 3*g && g > 0 {
			before[i] = true
		}
	}
	aliases := 0
	for i := range hist {
		if !before[i] {
			continue
		}
		if i%4 == 0 {
			// An app send: the document has the requestId, the id an alias.
			q, err := msgbuild.BuildOutbound(msgbuild.Outbound{AccountID: acc, ToJID: hist[i].ClientJID,
				RequestID: fmt.Sprintf("req-%d", i), WAMessageID: hist[i].WAMessageID, Status: "sent", At: hist[i].TsClient, Body: "sent"})
			if err != nil {
				t.Fatal(err)
			}
			if o, err := s.RecordMessage(t.Context(), q); err != nil || o != store.Wrote {
				t.Fatalf("app send: %v, %v", o, err)
			}
			aliases++
			continue
		}
		live := hist[i]
		live.Source = "realtime"
		if o, err := s.RecordMessage(t.Context(), live); err != nil || o != store.Wrote {
			t.Fatalf("live: %v, %v", o, err)
		}
	}
	res, err := s.RecordHistory(t.Context(), acc, hist)
	if err != nil {
		t.Fatal(err)
	}
	if res.Saved != n-len(before) || res.Skipped != len(before) || res.Errors != 0 {
		t.Fatalf("history result %+v; want %d saved, %d skipped", res, n-len(before), len(before))
	}
	var docs, mapped int
	if err := s.rdb.QueryRow(`SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM message_ids)`).Scan(&docs, &mapped); err != nil {
		t.Fatal(err)
	}
	if docs != n || mapped != aliases {
		t.Fatalf("%d documents and %d aliases; want %d and %d", docs, mapped, n, aliases)
	}
	for i, m := range hist {
		got, err := s.FindMessage(t.Context(), acc, m.WAMessageID)
		want := m.DocID
		if before[i] && i%4 == 0 {
			want = fmt.Sprintf("req-%d", i)
		}
		if err != nil || got.DocID != want {
			t.Fatalf("message %d: FindMessage → %s, %v; want %s", i, got.DocID, err, want)
		}
	}
	// The same sync again: everything known, nothing written.
	if res, err = s.RecordHistory(t.Context(), acc, hist); err != nil || res.Saved != 0 || res.Skipped != n {
		t.Fatalf("repeat: %+v, %v", res, err)
	}
}
