// Package storetest is the contract test suite every store backend passes:
// the identity rules (one document per WhatsApp message whatever path
// delivers it), the thread summary rules, counters, accounts and the outbox.
//
// A backend's test calls Run with an Opener:
//
//	func TestContract(t *testing.T) {
//		storetest.Run(t, func(t *testing.T, env storetest.Env) (store.Store, string) { … })
//	}
//
// Contract details the suite pins, beyond the comments in package store:
//   - Every RecordMessage/RecordHistory decision counts: a new document
//     counts dedupe.wrote; a repeat of a known message (Skipped or Updated)
//     counts dedupe.skipped; StrongSkipped counts dedupe.strongSkipped.
//     RecordHistory counts in dedupe.* too, and also history.wrote (new
//     documents) and history.skipped (everything else); lastBatchCount is
//     the length of the last batch, lastRunAt the store clock's time of it.
//   - A message whose document id already exists in its thread (an app send
//     queued under its requestId) is the same message: recording it again
//     with the WhatsApp id attaches the id (mapping created, Updated).
//   - Merging a repeat never creates a document and never changes the
//     document id; outbound status only moves forward
//     (queued < sent < failed < delivered < read): a send that fails for
//     good marks a queued or sent document failed, and a later delivered or
//     read receipt still wins over failed (WhatsApp proved it arrived).
//   - Receipts for unknown ids are ignored (nil error, nothing written);
//     edits and revokes of unknown ids return store.ErrNotFound.
//   - ListMessages and Inbox are newest first by tsClient; ListThreads is
//     newest first by lastMessageAt; Page.Limit caps the answer (<= 0: 50).
//     Items at the same time come in a backend-defined but fixed order.
//     Following each page's last Cursor as the next Page.After lists every
//     item exactly once, in the same order as one big page, even while
//     newer items are recorded; a cursor the backend did not issue for that
//     listing fails with store.ErrBadCursor.
//   - PutAccount writes every field wactl owns as given (so a QR or an error
//     can be cleared), except CreatedAt, which is kept once set; fields of
//     other writers are left alone. A non-zero Epoch lower than the stored
//     one fails with store.ErrFenced.
//   - ClaimOutbox increments attemptCount; CompleteOutbox and FailOutbox by
//     a claimer that no longer holds the claim fail with store.ErrFenced;
//     unknown request ids give store.ErrNotFound.
package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/wactl/wactl/pkg/store"
)

// Env is what the suite asks of an opened store.
type Env struct {
	// Now is the clock the store must use for leases, retry times,
	// updatedAt and history.lastRunAt. (createdAt may be server time.)
	Now func() time.Time
	// StrongDedupe enables fingerprint dedupe.
	StrongDedupe bool
	// Reuse is "" for fresh, empty storage, or a key an earlier open of
	// this test returned: open the same data again (the earlier store has
	// been closed).
	Reuse string
}

// Opener opens a store for one test and returns it with a key that reopens
// the same data. The opener must close the store in t.Cleanup; the suite
// may close it earlier, so Close must be safe to call twice.
type Opener func(t *testing.T, env Env) (store.Store, string)

// Run runs the whole contract suite.
func Run(t *testing.T, open Opener) {
	t.Run("Validation", func(t *testing.T) { t.Parallel(); testValidation(t, open) })
	t.Run("RoundTrip", func(t *testing.T) { t.Parallel(); testRoundTrip(t, open) })
	t.Run("Redelivery", func(t *testing.T) { t.Parallel(); testRedelivery(t, open) })
	t.Run("EchoOfQueuedSend", func(t *testing.T) { t.Parallel(); testEchoOfQueuedSend(t, open) })
	t.Run("EchoOfImmediateSend", func(t *testing.T) { t.Parallel(); testEchoOfImmediateSend(t, open) })
	t.Run("EchoBeforeSendRecorded", func(t *testing.T) { t.Parallel(); testEchoBeforeSendRecorded(t, open) })
	t.Run("Receipts", func(t *testing.T) { t.Parallel(); testReceipts(t, open) })
	t.Run("FailedStatus", func(t *testing.T) { t.Parallel(); testFailedStatus(t, open) })
	t.Run("EditRevoke", func(t *testing.T) { t.Parallel(); testEditRevoke(t, open) })
	t.Run("HistoryWithLive", func(t *testing.T) { t.Parallel(); testHistoryWithLive(t, open) })
	t.Run("ConcurrentWriters", func(t *testing.T) { t.Parallel(); testConcurrentWriters(t, open) })
	t.Run("Reopen", func(t *testing.T) { t.Parallel(); testReopen(t, open) })
	t.Run("StrongDedupe", func(t *testing.T) { t.Parallel(); testStrongDedupe(t, open) })
	t.Run("Accounts", func(t *testing.T) { t.Parallel(); testAccounts(t, open) })
	t.Run("Reads", func(t *testing.T) { t.Parallel(); testReads(t, open) })
	t.Run("CheckSend", func(t *testing.T) { t.Parallel(); testCheckSend(t, open) })
	t.Run("Paging", func(t *testing.T) { t.Parallel(); testPaging(t, open) })
	t.Run("Outbox", func(t *testing.T) { t.Parallel(); testOutbox(t, open) })
	t.Run("OutboxConcurrentClaims", func(t *testing.T) { t.Parallel(); testOutboxConcurrentClaims(t, open) })
	t.Run("Health", func(t *testing.T) { t.Parallel(); testHealth(t, open) })
}

// Clock is a settable clock for Env.Now.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock starts at the real current time (ms precision), so a backend
// that uses server time for some fields still lands near it.
func NewClock() *Clock { return &Clock{t: time.Now().Truncate(time.Millisecond)} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func openFresh(t *testing.T, open Opener, strong bool) (store.Store, *Clock, string) {
	t.Helper()
	c := NewClock()
	s, key := open(t, Env{Now: c.Now, StrongDedupe: strong})
	return s, c, key
}
