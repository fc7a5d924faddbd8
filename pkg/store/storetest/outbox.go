package storetest

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/wactl/wactl/pkg/store"
)

func enqueue(t *testing.T, s store.Store, acc string, n int, next time.Time, created time.Time) string {
	t.Helper()
	id := requestID(n)
	ok, err := s.EnqueueOutbox(ctx(t), store.OutboxItem{
		RequestID: id, AccountID: acc, ToJID: peer(1), ThreadID: acc + "__" + peer(1),
		ClientMessageID: fmt.Sprintf("c%d", n), Body: fmt.Sprintf("body %d", n), Status: "queued",
		NextAttemptAt: next, CreatedAt: created, UpdatedAt: created, CreatedByUID: "uid-1",
	})
	if err != nil || !ok {
		t.Fatalf("EnqueueOutbox(%d) = %v, %v", n, ok, err)
	}
	return id
}

func claim(t *testing.T, s store.Store, who string, lease time.Duration, limit int) []store.OutboxItem {
	t.Helper()
	its, err := s.ClaimOutbox(ctx(t), who, 1, lease, limit)
	if err != nil {
		t.Fatalf("ClaimOutbox(%s): %v", who, err)
	}
	return its
}

func reqIDs(its []store.OutboxItem) []string {
	out := make([]string, len(its))
	for i, it := range its {
		out[i] = it.RequestID
	}
	sort.Strings(out)
	return out
}

func testOutbox(t *testing.T, open Opener) {
	s, clock, _ := openFresh(t, open, false)
	acc := accountFor(1)
	now := clock.Now()
	r1 := enqueue(t, s, acc, 1, time.Time{}, now.Add(-3*time.Second))
	r2 := enqueue(t, s, acc, 2, now, now.Add(-2*time.Second))
	r3 := enqueue(t, s, acc, 3, time.Time{}, now.Add(-time.Second))
	later := enqueue(t, s, acc, 4, now.Add(time.Hour), now)

	got, err := s.GetOutbox(ctx(t), r1)
	if err != nil || got.Body != "body 1" || got.ClientMessageID != "c1" || got.CreatedByUID != "uid-1" || got.Status != "queued" || got.AccountID != acc {
		t.Fatalf("GetOutbox round trip: %+v, %v", got, err)
	}

	const lease = 30 * time.Second
	a := claim(t, s, "A", lease, 2)
	b := claim(t, s, "B", lease, 5)
	if len(a) != 2 || len(b) != 1 {
		t.Fatalf("claims A %v B %v, want 2 and 1 of the 3 due items", reqIDs(a), reqIDs(b))
	}
	claimed := append(reqIDs(a), reqIDs(b)...)
	sort.Strings(claimed)
	if want := []string{r1, r2, r3}; fmt.Sprint(claimed) != fmt.Sprint(sortedCopy(want)) {
		t.Fatalf("claimed %v, want %v (not the future item)", claimed, want)
	}
	for _, it := range append(a, b...) {
		if it.Status != "processing" || it.AttemptCount != 1 || !sameMs(it.LeaseUntil, now.Add(lease)) || it.Body == "" {
			t.Fatalf("claimed item %+v", it)
		}
	}
	if c := claim(t, s, "C", lease, 5); len(c) != 0 {
		t.Fatalf("C claimed %v while everything is held or not due", reqIDs(c))
	}
	owner := map[string]string{}
	for _, it := range a {
		owner[it.RequestID] = "A"
	}
	for _, it := range b {
		owner[it.RequestID] = "B"
	}

	// Complete r1 by its owner; a non-owner is fenced.
	wrong := map[string]string{"A": "B", "B": "A"}[owner[r1]]
	if err := s.CompleteOutbox(ctx(t), r1, wrong, "3EB0X"); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("CompleteOutbox by a non-owner: %v, want ErrFenced", err)
	}
	if err := s.CompleteOutbox(ctx(t), r1, owner[r1], "3EB0PROVIDER1"); err != nil {
		t.Fatal(err)
	}
	if got, _ = s.GetOutbox(ctx(t), r1); got.Status != "sent" || got.ProviderMessageID != "3EB0PROVIDER1" || got.SentAt.IsZero() {
		t.Fatalf("completed item %+v", got)
	}

	// Fail r2 with a retry in a minute: queued again, not due yet.
	if err := s.FailOutbox(ctx(t), r2, owner[r2], "network down", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got, _ = s.GetOutbox(ctx(t), r2); got.Status != "queued" || got.LastError != "network down" || !sameMs(got.NextAttemptAt, now.Add(time.Minute)) {
		t.Fatalf("failed-for-retry item %+v", got)
	}
	if c := claim(t, s, "C", lease, 5); len(c) != 0 {
		t.Fatalf("C claimed %v before the retry time", reqIDs(c))
	}

	// 31 s later r3's claim has expired: it goes back to the queue.
	clock.Advance(31 * time.Second)
	c := claim(t, s, "C", lease, 5)
	if len(c) != 1 || c[0].RequestID != r3 || c[0].AttemptCount != 2 || c[0].ClaimedBy != "C" {
		t.Fatalf("reclaim after expiry: %+v", c)
	}
	if err := s.CompleteOutbox(ctx(t), r3, owner[r3], "3EB0LATE"); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("the expired claimer completed the item: %v, want ErrFenced", err)
	}
	// Fail for good.
	if err := s.FailOutbox(ctx(t), r3, "C", "invalid recipient", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if got, _ = s.GetOutbox(ctx(t), r3); got.Status != "failed" || got.FailedAt.IsZero() || got.LastError != "invalid recipient" {
		t.Fatalf("failed item %+v", got)
	}

	// After the retry time r2 is due again; completed and failed items never are.
	clock.Advance(time.Minute)
	d := claim(t, s, "D", lease, 5)
	if len(d) != 1 || d[0].RequestID != r2 || d[0].AttemptCount != 2 {
		t.Fatalf("retry claim %+v", d)
	}
	clock.Advance(2 * time.Hour)
	e := claim(t, s, "E", lease, 5)
	if fmt.Sprint(reqIDs(e)) != fmt.Sprint(sortedCopy([]string{r2, later})) {
		t.Fatalf("after 2h E claimed %v, want r2 (expired) and the delayed item", reqIDs(e))
	}
	if _, err := s.GetOutbox(ctx(t), requestID(99)); !isNotFound(err) {
		t.Fatalf("GetOutbox of a missing item: %v", err)
	}
	if err := s.CompleteOutbox(ctx(t), requestID(99), "E", "x"); !isNotFound(err) {
		t.Fatalf("CompleteOutbox of a missing item: %v", err)
	}
}

func sortedCopy(s []string) []string {
	c := append([]string(nil), s...)
	sort.Strings(c)
	return c
}

func testOutboxConcurrentClaims(t *testing.T, open Opener) {
	s, clock, _ := openFresh(t, open, false)
	acc := accountFor(1)
	const items, claimers = 40, 8
	for i := range items {
		enqueue(t, s, acc, 100+i, time.Time{}, clock.Now())
	}
	var mu sync.Mutex
	holders := map[string][]string{}
	var wg sync.WaitGroup
	for w := range claimers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			who := fmt.Sprintf("W%d", w)
			for range 20 {
				its, err := s.ClaimOutbox(t.Context(), who, int64(w+1), time.Minute, 3)
				if err != nil {
					t.Errorf("%s: %v", who, err)
					return
				}
				if len(its) == 0 {
					return
				}
				mu.Lock()
				for _, it := range its {
					holders[it.RequestID] = append(holders[it.RequestID], who)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(holders) != items {
		t.Fatalf("%d items claimed, want %d", len(holders), items)
	}
	for id, hs := range holders {
		if len(hs) != 1 {
			t.Fatalf("item %s claimed by %v", id[:8], hs)
		}
		it, err := s.GetOutbox(ctx(t), id)
		if err != nil || it.ClaimedBy != hs[0] || it.Status != "processing" {
			t.Fatalf("item %s: %+v, %v; claimed by %s", id[:8], it, err, hs[0])
		}
	}
}
