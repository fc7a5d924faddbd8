package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/wactl/wactl/pkg/store"
)

// testPaging follows cursors through every listing and checks the pages
// against one big page: every item exactly once, in the same order, while
// newer items are recorded between pages.
func testPaging(t *testing.T, open Opener) {
	s, _, _ := openFresh(t, open, false)
	acc := accountFor(1)
	// Message i goes to thread i%6 at minute i/4: ties across threads (the
	// inbox), and threads 2..5 end at the same minute (ListThreads). Thread
	// 0 also gets three messages at one instant (ListMessages).
	var batch []store.Message
	for i := range 24 {
		batch = append(batch, Inbound(acc, i%6, fmt.Sprintf("3EB0PG%02d", i), base.Add(time.Duration(i/4)*time.Minute), fmt.Sprintf("m%d", i)))
	}
	for k := range 3 {
		batch = append(batch, Inbound(acc, 0, fmt.Sprintf("3EB0PGTIE%d", k), base.Add(2*time.Minute), "tie"))
	}
	if r, err := s.RecordHistory(ctx(t), acc, batch); err != nil || r.Saved != len(batch) {
		t.Fatalf("RecordHistory: %+v, %v", r, err)
	}
	record(t, s, Inbound(accountFor(2), 0, "3EB0PGOTHER", base.Add(time.Minute), "other account"), store.Wrote)
	thread0 := batch[0].ThreadID

	allThreads, err := s.ListThreads(ctx(t), acc, store.Page{Limit: 1000})
	if err != nil || len(allThreads) != 6 {
		t.Fatalf("ListThreads of all: %d, %v", len(allThreads), err)
	}
	allInbox, err := s.Inbox(ctx(t), acc, store.Page{Limit: 1000})
	if err != nil || len(allInbox) != len(batch) {
		t.Fatalf("Inbox of all: %d, %v", len(allInbox), err)
	}
	allThread0, err := s.ListMessages(ctx(t), thread0, store.Page{Limit: 1000})
	if err != nil || len(allThread0) != 7 {
		t.Fatalf("ListMessages of all: %d, %v", len(allThread0), err)
	}
	newestFirst(t, "ListThreads", allThreads, func(th store.Thread) time.Time { return th.LastMessageAt })
	newestFirst(t, "Inbox", allInbox, msgTime)
	newestFirst(t, "ListMessages", allThread0, msgTime)

	// New threads newer than everything: they sort before every cursor, so
	// later pages neither repeat nor skip anything.
	n := 0
	newThread := func() {
		n++
		record(t, s, Inbound(acc, 100+n, fmt.Sprintf("3EB0PGNEW%02d", n), base.Add(time.Hour+time.Duration(n)*time.Minute), "newer"), store.Wrote)
	}
	for _, limit := range []int{1, 2, 4} {
		n0 := n
		got := follow(t, "ListThreads", limit, func(p store.Page) ([]store.Thread, error) { return s.ListThreads(ctx(t), acc, p) },
			func(th store.Thread) string { return th.Cursor }, newThread)
		samePages(t, fmt.Sprintf("ListThreads limit %d", limit), threadIDs(got), threadIDs(allThreads), n0)
	}
	for _, limit := range []int{1, 4, 5} {
		n0 := n
		got := follow(t, "Inbox", limit, func(p store.Page) ([]store.Message, error) { return s.Inbox(ctx(t), acc, p) },
			func(m store.Message) string { return m.Cursor }, newThread)
		samePages(t, fmt.Sprintf("Inbox limit %d", limit), ids(got), ids(allInbox), n0)
	}
	// Newer messages in the listed thread itself.
	newMessage := func() {
		n++
		record(t, s, Inbound(acc, 0, fmt.Sprintf("3EB0PGNEW%02d", n), base.Add(time.Hour+time.Duration(n)*time.Minute), "newer"), store.Wrote)
	}
	nThreads := n
	for _, limit := range []int{1, 2, 3} {
		n0 := n
		got := follow(t, "ListMessages", limit, func(p store.Page) ([]store.Message, error) { return s.ListMessages(ctx(t), thread0, p) },
			func(m store.Message) string { return m.Cursor }, newMessage)
		samePages(t, fmt.Sprintf("ListMessages limit %d", limit), ids(got), ids(allThread0), n0-nThreads)
	}

	// Malformed cursors are refused, never read as "from the start".
	for _, bad := range []string{"not a cursor", "bm9wZQ", "LTA1LjE", "MTIzLg"} {
		if _, err := s.ListThreads(ctx(t), acc, store.Page{Limit: 5, After: bad}); !errors.Is(err, store.ErrBadCursor) {
			t.Errorf("ListThreads after %q: %v, want ErrBadCursor", bad, err)
		}
		if _, err := s.Inbox(ctx(t), acc, store.Page{Limit: 5, After: bad}); !errors.Is(err, store.ErrBadCursor) {
			t.Errorf("Inbox after %q: %v, want ErrBadCursor", bad, err)
		}
		if _, err := s.ListMessages(ctx(t), thread0, store.Page{Limit: 5, After: bad}); !errors.Is(err, store.ErrBadCursor) {
			t.Errorf("ListMessages after %q: %v, want ErrBadCursor", bad, err)
		}
	}
	// The default page size applies to Limit <= 0.
	if ms, err := s.Inbox(ctx(t), acc, store.Page{}); err != nil || len(ms) != min(50, len(batch)+n) {
		t.Fatalf("Inbox with the default limit: %d, %v", len(ms), err)
	}
}

// follow lists page after page from the newest, calling between after
// each page, until a short page; it fails on a page longer than limit or
// an item without a cursor.
func follow[T any](t *testing.T, what string, limit int, list func(store.Page) ([]T, error), cursor func(T) string, between func()) []T {
	t.Helper()
	var out []T
	after := ""
	for range 1000 {
		page, err := list(store.Page{Limit: limit, After: after})
		if err != nil {
			t.Fatalf("%s after %q: %v", what, after, err)
		}
		if len(page) > limit {
			t.Fatalf("%s: page of %d, limit %d", what, len(page), limit)
		}
		out = append(out, page...)
		if len(page) < limit {
			return out
		}
		after = cursor(page[len(page)-1])
		if after == "" {
			t.Fatalf("%s: item without a cursor", what)
		}
		between()
	}
	t.Fatalf("%s: pages never end", what)
	return nil
}

// samePages compares the joined pages with want, after the newer items
// that existed when the first page was read: items recorded during the
// pass are newer than every cursor, so they never show up in it.
func samePages(t *testing.T, what string, got, want []string, newer int) {
	t.Helper()
	if len(got) != newer+len(want) || !slices.Equal(got[newer:], want) {
		t.Fatalf("%s: pages joined (after %d newer)\n got %v\nwant %v", what, newer, got, want)
	}
}

func newestFirst[T any](t *testing.T, what string, items []T, at func(T) time.Time) {
	t.Helper()
	for i := 1; i < len(items); i++ {
		if at(items[i]).After(at(items[i-1])) {
			t.Fatalf("%s: item %d (%v) newer than item %d (%v)", what, i, at(items[i]), i-1, at(items[i-1]))
		}
	}
}

func msgTime(m store.Message) time.Time { return m.TsClient }

func threadIDs(ths []store.Thread) []string {
	out := make([]string, len(ths))
	for i, th := range ths {
		out[i] = th.ID
	}
	return out
}
