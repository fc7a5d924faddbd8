package storetest

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/wactl/wactl/pkg/store"
)

func history(t *testing.T, s store.Store, acc string, msgs []store.Message) store.HistoryResult {
	t.Helper()
	r, err := s.RecordHistory(ctx(t), acc, msgs)
	if err != nil {
		t.Fatalf("RecordHistory(%d messages): %v", len(msgs), err)
	}
	return r
}

func asHistory(m store.Message) store.Message {
	m.Source = "history_sync"
	return m
}

func testHistoryWithLive(t *testing.T, open Opener) {
	s, clock, _ := openFresh(t, open, false)
	acc := accountFor(1)
	l1 := Inbound(acc, 1, "3EB0LIVE01", base.Add(100*time.Second), "live one")
	l2 := Inbound(acc, 1, "3EB0LIVE02", base.Add(200*time.Second), "live two")
	record(t, s, l1, store.Wrote)
	record(t, s, l2, store.Wrote)

	h0 := asHistory(Inbound(acc, 1, "3EB0HIST00", base.Add(10*time.Second), "old zero"))
	h1 := asHistory(Inbound(acc, 1, "3EB0HIST01", base.Add(50*time.Second), "old one"))
	r := history(t, s, acc, []store.Message{h0, asHistory(l2), h1, asHistory(l1)})
	if r != (store.HistoryResult{Saved: 2, Skipped: 2, Total: 4}) {
		t.Fatalf("history result %+v, want saved 2 skipped 2 total 4", r)
	}
	th := thread(t, s, l1.ThreadID)
	if !sameMs(th.LastMessageAt, l2.TsClient) || th.LastMessageText != "live two" {
		t.Fatalf("thread moved back to %v %q, want %v %q", th.LastMessageAt, th.LastMessageText, l2.TsClient, "live two")
	}

	// A later batch of even older messages, in a second thread too.
	clock.Advance(time.Minute)
	older := []store.Message{
		asHistory(Inbound(acc, 1, "3EB0HIST02", base.Add(5*time.Second), "older")),
		asHistory(Inbound(acc, 2, "3EB0HIST03", base.Add(7*time.Second), "other chat")),
		asHistory(h0),
	}
	if r := history(t, s, acc, older); r != (store.HistoryResult{Saved: 2, Skipped: 1, Total: 3}) {
		t.Fatalf("second history result %+v", r)
	}
	th = thread(t, s, l1.ThreadID)
	if !sameMs(th.LastMessageAt, l2.TsClient) || th.LastMessageText != "live two" {
		t.Fatalf("thread moved back to %v %q", th.LastMessageAt, th.LastMessageText)
	}
	if th2 := thread(t, s, older[1].ThreadID); !sameMs(th2.LastMessageAt, older[1].TsClient) {
		t.Fatalf("new thread from history has lastMessageAt %v", th2.LastMessageAt)
	}
	// A newer message in history moves it forward.
	newer := asHistory(Inbound(acc, 1, "3EB0HIST04", base.Add(300*time.Second), "newest"))
	history(t, s, acc, []store.Message{newer})
	if th = thread(t, s, l1.ThreadID); !sameMs(th.LastMessageAt, newer.TsClient) || th.LastMessageText != "newest" {
		t.Fatalf("history did not move the thread forward: %v %q", th.LastMessageAt, th.LastMessageText)
	}
	if n := len(messages(t, s, l1.ThreadID)); n != 6 {
		t.Fatalf("%d documents in the thread, want 6", n)
	}
	c := counters(t, s, acc)
	wantCounters(t, c, 7, 3, 0)
	if c.HistoryWrote != 5 || c.HistorySkipped != 3 || c.HistoryLastBatch != 1 {
		t.Fatalf("history counters wrote/skipped/lastBatch = %d/%d/%d, want 5/3/1", c.HistoryWrote, c.HistorySkipped, c.HistoryLastBatch)
	}
	if !near(c.HistoryLastRunAt, clock.Now(), time.Minute) {
		t.Fatalf("history lastRunAt %v, want near %v", c.HistoryLastRunAt, clock.Now())
	}
	if r := history(t, s, acc, nil); r.Total != 0 {
		t.Fatalf("empty batch: %+v", r)
	}
}

// concurrentSet is n messages spread over 10 threads.
func concurrentSet(acc string, n int) []store.Message {
	ms := make([]store.Message, n)
	for i := range ms {
		ms[i] = Inbound(acc, i%10, fmt.Sprintf("3EB0C%06d", i), base.Add(time.Duration(i)*time.Second), fmt.Sprintf("message %d", i))
	}
	return ms
}

func testConcurrentWriters(t *testing.T, open Opener) {
	s, _, _ := openFresh(t, open, false)
	acc := accountFor(1)
	const n, writers = 1000, 8
	all := concurrentSet(acc, n)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			order := rand.New(rand.NewPCG(uint64(w), 7)).Perm(n)
			if w%2 == 0 { // live writers
				for _, i := range order {
					if _, err := s.RecordMessage(t.Context(), all[i]); err != nil {
						errs <- fmt.Errorf("writer %d: %w", w, err)
						return
					}
				}
				return
			}
			for start := 0; start < n; start += 100 { // history writers
				batch := make([]store.Message, 0, 100)
				for _, i := range order[start : start+100] {
					batch = append(batch, asHistory(all[i]))
				}
				if _, err := s.RecordHistory(t.Context(), acc, batch); err != nil {
					errs <- fmt.Errorf("writer %d: %w", w, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	total := 0
	for p := range 10 {
		ms := messages(t, s, all[p].ThreadID)
		total += len(ms)
		seen := map[string]bool{}
		for _, m := range ms {
			if seen[m.WAMessageID] {
				t.Fatalf("duplicate document for %s", m.WAMessageID)
			}
			seen[m.WAMessageID] = true
		}
		last := all[n-10+p].TsClient
		if th := thread(t, s, all[p].ThreadID); !sameMs(th.LastMessageAt, last) {
			t.Errorf("thread %d lastMessageAt %v, want %v", p, th.LastMessageAt, last)
		}
	}
	if total != n {
		t.Fatalf("%d documents, want exactly %d", total, n)
	}
	wantCounters(t, counters(t, s, acc), n, (writers-1)*n, 0)
}

func testReopen(t *testing.T, open Opener) {
	clock := NewClock()
	s, key := open(t, Env{Now: clock.Now})
	acc := accountFor(1)
	ms := concurrentSet(acc, 30)
	for _, m := range ms[:10] {
		record(t, s, m, store.Wrote)
	}
	record(t, s, ms[0], store.Skipped, store.Updated)
	hb := make([]store.Message, 0, 20)
	for _, m := range ms[5:25] {
		hb = append(hb, asHistory(m))
	}
	history(t, s, acc, hb)
	if err := s.PutAccount(ctx(t), store.Account{ID: acc, Name: "Shop", PhoneE164: "+40700000001", Status: "connected", Epoch: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EnqueueOutbox(ctx(t), store.OutboxItem{RequestID: requestID(9), AccountID: acc, ToJID: peer(1), Body: "x", Status: "queued"}); err != nil {
		t.Fatal(err)
	}
	before := counters(t, s, acc)
	if err := s.Flush(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2, _ := open(t, Env{Now: clock.Now, Reuse: key})
	after := counters(t, s2, acc)
	if !sameMs(after.HistoryLastRunAt, before.HistoryLastRunAt) {
		t.Fatalf("lastRunAt %v after reopen, was %v", after.HistoryLastRunAt, before.HistoryLastRunAt)
	}
	after.HistoryLastRunAt, before.HistoryLastRunAt = time.Time{}, time.Time{}
	if after != before {
		t.Fatalf("counters after reopen %+v, before %+v", after, before)
	}
	wantCounters(t, after, 25, 6, 0)
	if after.HistoryWrote != 15 || after.HistorySkipped != 5 || after.HistoryLastBatch != 20 {
		t.Fatalf("history counters %+v", after)
	}
	// Identity survives the restart, and counting resumes from the totals.
	record(t, s2, ms[3], store.Skipped, store.Updated)
	record(t, s2, ms[29], store.Wrote)
	wantCounters(t, counters(t, s2, acc), 26, 7, 0)
	if a, err := s2.GetAccount(ctx(t), acc); err != nil || a.Name != "Shop" {
		t.Fatalf("account after reopen: %+v, %v", a, err)
	}
	if err := s2.PutAccount(ctx(t), store.Account{ID: acc, Name: "Shop", Status: "connected", Epoch: 2}); err == nil {
		t.Fatal("a stale epoch was accepted after reopen")
	}
	if _, err := s2.GetOutbox(ctx(t), requestID(9)); err != nil {
		t.Fatalf("outbox after reopen: %v", err)
	}
	total := 0
	for p := range 10 {
		total += len(messages(t, s2, ms[p].ThreadID))
	}
	if total != 26 {
		t.Fatalf("%d documents after reopen, want 26", total)
	}
}

func testStrongDedupe(t *testing.T, open Opener) {
	for _, strong := range []bool{false, true} {
		t.Run(fmt.Sprintf("strong=%v", strong), func(t *testing.T) {
			s, _, _ := openFresh(t, open, strong)
			acc := accountFor(1)
			a := Inbound(acc, 1, "3EB0STRONGA", base, "same  text ")
			// The same message again under another id (a bridge or a
			// re-send): same thread, sender, time, type and text.
			b := Inbound(acc, 1, "3EB0STRONGB", base, "same text")
			if a.FingerprintHash != b.FingerprintHash {
				t.Fatal("fixture: fingerprints differ")
			}
			c := Inbound(acc, 1, "3EB0STRONGC", base, "different text")
			record(t, s, a, store.Wrote)
			if strong {
				record(t, s, b, store.StrongSkipped)
			} else {
				record(t, s, b, store.Wrote)
			}
			record(t, s, c, store.Wrote)
			n := len(messages(t, s, a.ThreadID))
			if strong {
				if n != 2 {
					t.Fatalf("%d documents, want 2", n)
				}
				wantCounters(t, counters(t, s, acc), 2, 0, 1)
			} else {
				if n != 3 {
					t.Fatalf("%d documents, want 3", n)
				}
				wantCounters(t, counters(t, s, acc), 3, 0, 0)
			}
			// The same fingerprint in another thread is another message.
			d := Inbound(acc, 2, "3EB0STRONGD", base, "same text")
			record(t, s, d, store.Wrote)
			if strong {
				r := history(t, s, acc, []store.Message{asHistory(Inbound(acc, 2, "3EB0STRONGE", base, "same text"))})
				if r.Saved != 0 || r.Skipped != 1 {
					t.Fatalf("strong duplicate in history: %+v", r)
				}
				if c := counters(t, s, acc); c.DedupeStrongSkipped != 2 {
					t.Fatalf("strongSkipped %d, want 2", c.DedupeStrongSkipped)
				}
			}
		})
	}
}
