package audit

import (
	"context"
	"time"
)

// Source reads message documents of one store.
type Source interface {
	// Scan calls fn once for every document of sel: the newest sel.Limit
	// within sel.Window, documents with a string or missing tsClient
	// included. The *Doc is only valid during the call. sel.Key lets the
	// source skip reading bodies the key does not need. During a scan
	// ThreadID may be a source-internal identity of the thread (1:1 with
	// the thread id, enough to group) and ID may be empty when the key
	// does not need it; Resolve returns the real ids.
	Scan(ctx context.Context, sel Selection, fn func(*Doc) error) (ScanStats, error)
	// Resolve reads the current state of documents seen by the last Scan,
	// with every field (body included) and PrevMark filled. Documents that
	// no longer exist are left out.
	Resolve(ctx context.Context, refs []int64) ([]Doc, error)
}

// ScanStats counts what a scan read besides the selected documents.
type ScanStats struct {
	// Scanned is every document read, including those read only to learn
	// they fall outside the selection (old shapes are filtered here).
	Scanned int
	// ParseFailures are documents whose tsClient could not be read as a
	// time: they cannot be placed in a window and are not grouped.
	ParseFailures int
	// Shapes counts the selected documents by how they carried tsClient.
	Shapes map[string]int
	// Skipped counts the documents read but not selected, by reason
	// (SkipNoTime, SkipOutsideWindow, SkipOverLimit); every read document
	// is either selected or counted here.
	Skipped map[string]int
}

// Reasons a read document is not selected.
const (
	// SkipNoTime: no tsClient, tsClientMs, tsServer, ingestedAt or
	// createdAt that reads as a time (the same as ParseFailures).
	SkipNoTime = "noTime"
	// SkipOutsideWindow: its time is before the window.
	SkipOutsideWindow = "outsideWindow"
	// SkipOverLimit: read, but older than the newest Limit.
	SkipOverLimit = "overLimit"
	// SkipExcludedMarked: selected but already isDuplicate:true, left out
	// of the grouping by --exclude-marked (counted by Collect).
	SkipExcludedMarked = "excludedMarked"
)

func (st *ScanStats) skip(reason string) {
	if st.Skipped == nil {
		st.Skipped = map[string]int{}
	}
	st.Skipped[reason]++
}

// Mark is one document to mark as a duplicate of the canonical copy.
type Mark struct {
	ThreadID    string
	DocID       string
	DuplicateOf string
	// CanonicalThreadID is the thread of DuplicateOf (a group may span
	// threads): the mark is written only while that copy is still live.
	CanonicalThreadID string
	// Prev is the document's values of the mark fields before marking
	// (only the fields it had), so that undo restores them exactly.
	Prev map[string]any
}

// RunInfo describes one cleanup run, recorded so that it can be undone.
type RunInfo struct {
	ID        string
	StartedAt time.Time
	Selection Selection
}

// ThreadChange is what recomputing a thread summary did.
type ThreadChange struct {
	Updated bool
	// Kept says why an outdated-looking summary was left alone.
	Kept string
}

// UndoResult counts what an undo restored.
type UndoResult struct {
	Unmarked        int // documents restored to their state before the run
	Skipped         int // marked again since, or gone: left alone
	ThreadsRestored int
	ThreadsKept     int // moved on since the run: left alone
}

// Marker writes cleanup marks. Every write is journaled under the run id in
// the same atomic commit, which is what makes a run resumable and exactly
// undoable. Nothing is ever deleted from the messages.
type Marker interface {
	BeginRun(ctx context.Context, r RunInfo) error
	// Mark writes marks in batches within the store's limits and returns
	// how many documents were marked. progress, when not nil, is called
	// after each committed batch with the running total.
	Mark(ctx context.Context, runID string, at time.Time, marks []Mark, progress func(done int)) (int, error)
	// RecomputeThread sets the thread's lastMessageAt/lastMessageAtMs/
	// lastMessageText from its newest non-duplicate message, never moving
	// it back past a message it cannot account for (see the docs of each
	// backend).
	RecomputeThread(ctx context.Context, runID, threadID string) (ThreadChange, error)
	FinishRun(ctx context.Context, runID string, marked, threads int) error
	Undo(ctx context.Context, runID string) (UndoResult, error)
}

// Backend is a store opened for auditing and cleanup.
type Backend interface {
	Source
	Marker
	Name() string
	Close() error
}
