package storetest

import (
	"testing"
	"time"

	"github.com/wactl/wactl/pkg/store"
)

// EditOrder checks that the newest edit (by edit time) wins whatever order
// the edits arrive in, on the message and on its thread's last text; a
// revoke is kept by a later edit. (Issue 14.3: on ca70e15 an older edit
// applied after a newer one overwrote it on both stores.)
func EditOrder(t *testing.T, open Opener) {
	s, _ := open(t, Env{Now: NewClock().Now})
	acct := accountFor(901)
	m := Inbound(acct, 1, "EDIT-ORDER-1", base, "original")
	record(t, s, m)
	edit := func(body string, at time.Time) {
		t.Helper()
		if err := s.ApplyEdit(ctx(t), store.Edit{AccountID: acct, ChatJID: m.ClientJID, TargetWAID: "EDIT-ORDER-1", NewBody: body, At: at}); err != nil {
			t.Fatal(err)
		}
	}
	edit("second edit", base.Add(2*time.Minute))
	edit("first edit", base.Add(1*time.Minute)) // arrives late: older
	got := onlyMessage(t, s, m.ThreadID)
	if got.Body != "second edit" || !got.Edited {
		t.Fatalf("after an older edit arrived late: body %q edited %v, want the newer %q", got.Body, got.Edited, "second edit")
	}
	if err := s.Flush(ctx(t)); err != nil {
		t.Fatal(err)
	}
	th, err := s.GetThread(ctx(t), m.ThreadID)
	if err != nil {
		t.Fatal(err)
	}
	if th.LastMessageText != "second edit" {
		t.Fatalf("thread last text %q, want the newer edit", th.LastMessageText)
	}
	edit("third edit", base.Add(3*time.Minute))
	if got := onlyMessage(t, s, m.ThreadID); got.Body != "third edit" {
		t.Fatalf("a newer edit was not applied: %q", got.Body)
	}
	if err := s.ApplyRevoke(ctx(t), store.Revoke{AccountID: acct, ChatJID: m.ClientJID, TargetWAID: "EDIT-ORDER-1", At: base.Add(4 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	edit("late edit", base.Add(150*time.Second))
	if got := onlyMessage(t, s, m.ThreadID); !got.Revoked || got.Body != "third edit" {
		t.Fatalf("after revoke and a stale edit: revoked %v body %q", got.Revoked, got.Body)
	}
}
