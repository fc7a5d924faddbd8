package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/wactl/wactl/pkg/store"
)

func testReads(t *testing.T, open Opener) {
	s, _, _ := openFresh(t, open, false)
	acc, other := accountFor(1), accountFor(2)
	// Thread p gets messages at base + (p*10 + k) minutes, k < 3, except
	// thread 0 which gets one much later message, so thread order differs
	// from creation order.
	var all []store.Message
	for p := range 4 {
		for k := range 3 {
			all = append(all, Inbound(acc, p, fmt.Sprintf("3EB0R%d%d", p, k), base.Add(time.Duration(p*10+k)*time.Minute), fmt.Sprintf("p%d k%d", p, k)))
		}
	}
	late := Inbound(acc, 0, "3EB0RLATE", base.Add(time.Hour), "late")
	all = append(all, late)
	for _, m := range all {
		record(t, s, m, store.Wrote)
	}
	record(t, s, Inbound(other, 0, "3EB0ROTHER", base.Add(2*time.Hour), "other account"), store.Wrote)

	ths, err := s.ListThreads(ctx(t), acc, store.Page{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, th := range ths {
		got = append(got, th.ID)
	}
	want := []string{all[0].ThreadID, all[9].ThreadID, all[6].ThreadID, all[3].ThreadID}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("ListThreads order\n got %v\nwant %v", got, want)
	}
	if ths, err = s.ListThreads(ctx(t), acc, store.Page{Limit: 2}); err != nil || len(ths) != 2 || ths[1].ID != want[1] {
		t.Fatalf("ListThreads limit 2: %d threads, %v", len(ths), err)
	}

	ms, err := s.ListMessages(ctx(t), all[3].ThreadID, store.Page{Limit: 2})
	if err != nil || len(ms) != 2 || ms[0].WAMessageID != "3EB0R12" || ms[1].WAMessageID != "3EB0R11" {
		t.Fatalf("ListMessages limit 2 newest first: %v, %v", ids(ms), err)
	}
	if ms, _ = s.ListMessages(ctx(t), all[0].ThreadID, store.Page{Limit: 10}); len(ms) != 4 || ms[0].WAMessageID != "3EB0RLATE" {
		t.Fatalf("ListMessages thread 0: %v", ids(ms))
	}

	in, err := s.Inbox(ctx(t), acc, store.Page{Limit: 5})
	if err != nil {
		t.Fatal(err)
	}
	wantIn := []string{"3EB0RLATE", "3EB0R32", "3EB0R31", "3EB0R30", "3EB0R22"}
	if fmt.Sprint(ids(in)) != fmt.Sprint(wantIn) {
		t.Fatalf("Inbox\n got %v\nwant %v", ids(in), wantIn)
	}
	for _, m := range in {
		if m.AccountID != acc || m.ThreadID == "" || m.ClientJID == "" {
			t.Fatalf("inbox message without its identity: %+v", m)
		}
	}
	if in, _ = s.Inbox(ctx(t), acc, store.Page{Limit: 100}); len(in) != 13 {
		t.Fatalf("Inbox of all: %d messages, want 13", len(in))
	}

	if _, err := s.GetThread(ctx(t), acc+"__nobody@s.whatsapp.net"); !isNotFound(err) {
		t.Fatalf("GetThread of a missing thread: %v", err)
	}
	if _, err := s.FindMessage(ctx(t), acc, "3EB0ROTHER"); !isNotFound(err) {
		t.Fatalf("FindMessage across accounts: %v, want ErrNotFound", err)
	}
	if ms, err := s.ListMessages(ctx(t), acc+"__nobody@s.whatsapp.net", store.Page{Limit: 10}); err != nil || len(ms) != 0 {
		t.Fatalf("ListMessages of a missing thread: %d, %v", len(ms), err)
	}
	if ths, err := s.ListThreads(ctx(t), accountFor(3), store.Page{Limit: 10}); err != nil || len(ths) != 0 {
		t.Fatalf("ListThreads of an unknown account: %d, %v", len(ths), err)
	}
}

func ids(ms []store.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.WAMessageID
	}
	return out
}

func testHealth(t *testing.T, open Opener) {
	s, _, _ := openFresh(t, open, false)
	record(t, s, Inbound(accountFor(1), 1, "3EB0HEALTH", base, "x"), store.Wrote)
	if err := s.Flush(ctx(t)); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	h := s.Health(ctx(t))
	if h.Backend == "" || !h.Reachable {
		t.Fatalf("health %+v, want a backend name and reachable", h)
	}
	if h.JournalBacklog != 0 {
		t.Fatalf("journal backlog %d after Flush", h.JournalBacklog)
	}
}
