package api

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/wactl/wactl/pkg/daemon"
	"github.com/wactl/wactl/pkg/store"
)

// WorkerOptions tune the outbox worker; zero values take the defaults.
type WorkerOptions struct {
	// Claimer names this instance in claimedBy (the instance id).
	Claimer string
	// Fence is lock.Lock.Fence: the lease epoch stored with each claim, and
	// whether this instance is ACTIVE (the worker idles while PASSIVE).
	Fence func() (epoch int64, active bool)
	// Interval between polls when the queue is empty (2 s).
	Interval time.Duration
	// Lease of a claim (2 min): longer than a send, so a live worker's
	// claim never expires under it; a crashed one's returns to the queue.
	Lease time.Duration
	// Batch is how many items one poll claims (10).
	Batch int
	// MaxAttempts before an item fails for good (8). Attempts while the
	// account is not connected do not count.
	MaxAttempts int
	// BaseBackoff doubles per attempt up to MaxBackoff (5 s, 10 min).
	BaseBackoff, MaxBackoff time.Duration
	// NotConnectedRetry is the wait while the account is not connected
	// (30 s); MaxQueueAge fails an item still unsent after it (24 h).
	NotConnectedRetry time.Duration
	MaxQueueAge       time.Duration
}

// OutboxWorker delivers outbox/{requestId} items: queued → processing
// (claimed under this instance and lease epoch) → sent | failed.
//
// Never twice: the worker and the send route hold the item's key lock
// while they check and send; an item whose message document already says
// sent (the route or an earlier attempt sent it) is completed without a
// send. The one window left is a crash after WhatsApp accepted the send
// and before the document was written: the claim expires, another attempt
// sends again — with the same derived WhatsApp message id, which the
// recipient's clients treat as the same message, and which lands on the
// same document.
type OutboxWorker struct {
	o    WorkerOptions
	wa   WhatsApp
	st   store.Store
	send *sender
	now  func() time.Time
	log  *slog.Logger
	kick chan struct{}
}

// OutboxWorker returns the worker sharing the send route's key locks.
func (a *API) OutboxWorker(o WorkerOptions) *OutboxWorker {
	if o.Claimer == "" {
		o.Claimer = a.instanceID()
	}
	if o.Interval <= 0 {
		o.Interval = 2 * time.Second
	}
	if o.Lease <= 0 {
		o.Lease = 2 * time.Minute
	}
	if o.Batch <= 0 {
		o.Batch = 10
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 8
	}
	if o.BaseBackoff <= 0 {
		o.BaseBackoff = 5 * time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 10 * time.Minute
	}
	if o.NotConnectedRetry <= 0 {
		o.NotConnectedRetry = 30 * time.Second
	}
	if o.MaxQueueAge <= 0 {
		o.MaxQueueAge = 24 * time.Hour
	}
	if o.Fence == nil {
		o.Fence = func() (int64, bool) { return 0, a.d.WhatsApp.Active() }
	}
	return &OutboxWorker{o: o, wa: a.d.WhatsApp, st: a.d.Store, send: a.send, now: a.now,
		log: a.d.Log.With("component", "outbox"), kick: make(chan struct{}, 1)}
}

// Kick asks for a poll now (tests, and after an account connects).
func (w *OutboxWorker) Kick() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Run polls until ctx ends.
func (w *OutboxWorker) Run(ctx context.Context) error {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-w.kick:
		}
		n, err := w.Poll(ctx)
		if err != nil && ctx.Err() == nil {
			w.log.Warn("outbox poll failed; retrying", "err", err)
		}
		wait := w.o.Interval
		if n == w.o.Batch {
			wait = 0 // more may be due
		}
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(wait)
	}
}

// Poll claims and processes one batch; it returns how many were claimed.
func (w *OutboxWorker) Poll(ctx context.Context) (int, error) {
	epoch, active := w.o.Fence()
	if !active || !w.wa.Active() {
		return 0, nil
	}
	items, err := w.st.ClaimOutbox(ctx, w.o.Claimer, epoch, w.o.Lease, w.o.Batch)
	if err != nil {
		return 0, err
	}
	for _, it := range items {
		if ctx.Err() != nil {
			break
		}
		w.process(ctx, it)
	}
	return len(items), nil
}

func (w *OutboxWorker) process(ctx context.Context, it store.OutboxItem) {
	log := w.log.With("requestId", it.RequestID, "account", it.AccountID, "attempt", it.AttemptCount)
	// The send must finish well inside the claim.
	ctx, cancel := context.WithTimeout(ctx, w.o.Lease/2)
	defer cancel()
	unlock, err := w.send.locks.lock(ctx, it.RequestID)
	if err != nil {
		return // the claim expires and the item is taken again
	}
	defer unlock()

	to, err := ParseRecipient(it.ToJID, "")
	if err != nil {
		w.giveUp(ctx, log, it, sendRequest{}, "invalid recipient: "+err.Error())
		return
	}
	q := sendRequest{AccountID: it.AccountID, To: to, Body: it.Body, Key: it.RequestID,
		ClientMessageID: it.ClientMessageID, ThreadID: it.ThreadID}
	waID := DeriveMessageID(it.AccountID, it.RequestID)
	if _, done, err := w.send.alreadySent(ctx, it.AccountID, waID); err != nil {
		w.retry(ctx, log, it, w.backoff(it.AttemptCount), "store: "+err.Error())
		return
	} else if done {
		w.complete(ctx, log, it, waID)
		return
	}
	if it.Body == "" {
		w.giveUp(ctx, log, it, q, "empty message body")
		return
	}
	// A send WhatsApp already accepted only needs its document, which
	// needs no connection.
	if !w.send.accepted(waID) && !w.connected(it.AccountID) {
		w.notConnected(ctx, log, it, q)
		return
	}
	info, err := w.send.deliver(ctx, q)
	switch {
	case err == nil:
		log.Info("outbox message sent", "messageId", info.ID)
		w.complete(ctx, log, it, info.ID)
	case errors.Is(err, errRecord):
		// Sent; the document is retried soon without sending again.
		w.retry(ctx, log, it, w.o.BaseBackoff, err.Error())
	case errors.Is(err, ErrNotConnected):
		w.notConnected(ctx, log, it, q)
	case errors.Is(err, ErrNoAccount):
		w.giveUp(ctx, log, it, q, "account not found")
	case it.AttemptCount >= w.o.MaxAttempts:
		w.giveUp(ctx, log, it, q, err.Error())
	default:
		w.retry(ctx, log, it, w.backoff(it.AttemptCount), err.Error())
	}
}

func (w *OutboxWorker) connected(id string) bool {
	for _, s := range w.wa.Accounts() {
		if s.ID == id {
			return s.State == daemon.StateConnected
		}
	}
	return false
}

// notConnected waits for the account without spending attempts, up to
// MaxQueueAge.
func (w *OutboxWorker) notConnected(ctx context.Context, log *slog.Logger, it store.OutboxItem, q sendRequest) {
	known := false
	for _, s := range w.wa.Accounts() {
		known = known || s.ID == it.AccountID
	}
	if !known {
		w.giveUp(ctx, log, it, q, "account not found")
		return
	}
	if !it.CreatedAt.IsZero() && w.now().Sub(it.CreatedAt) > w.o.MaxQueueAge {
		w.giveUp(ctx, log, it, q, "account not connected for "+w.o.MaxQueueAge.String())
		return
	}
	// ClaimOutbox counted this as an attempt; MaxAttempts is applied only
	// when WhatsApp itself refused a send, so a long outage fails nothing
	// before MaxQueueAge.
	w.retry(ctx, log, it, w.o.NotConnectedRetry, "account not connected")
}

// backoff after the n-th attempt: BaseBackoff·2^(n-1), at most MaxBackoff.
func (w *OutboxWorker) backoff(n int) time.Duration {
	d := w.o.BaseBackoff
	for i := 1; i < n && d < w.o.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, w.o.MaxBackoff)
}

func (w *OutboxWorker) complete(ctx context.Context, log *slog.Logger, it store.OutboxItem, waID string) {
	if err := w.st.CompleteOutbox(ctx, it.RequestID, w.o.Claimer, waID); err != nil {
		// Fenced: another claimer took the item; it finds the document
		// sent and completes it without sending.
		log.Warn("outbox item sent but not marked sent", "err", err)
	}
}

func (w *OutboxWorker) retry(ctx context.Context, log *slog.Logger, it store.OutboxItem, after time.Duration, why string) {
	// An item waiting for its account is retried every 30 s: INFO once,
	// and again only when the reason changes.
	level := slog.LevelDebug
	if it.AttemptCount <= 1 || it.LastError != why {
		level = slog.LevelInfo
	}
	log.Log(ctx, level, "outbox item retried later", "in", after, "why", why)
	if err := w.st.FailOutbox(ctx, it.RequestID, w.o.Claimer, why, w.now().Add(after)); err != nil {
		log.Warn("outbox retry not recorded (the claim expires instead)", "err", err)
	}
}

func (w *OutboxWorker) giveUp(ctx context.Context, log *slog.Logger, it store.OutboxItem, q sendRequest, why string) {
	log.Warn("outbox item failed for good", "why", why)
	if err := w.st.FailOutbox(ctx, it.RequestID, w.o.Claimer, why, time.Time{}); err != nil {
		log.Warn("outbox failure not recorded", "err", err)
		return
	}
	if q.AccountID != "" && !q.To.IsEmpty() {
		// The app shows the message as failed instead of queued forever.
		if err := w.send.record(ctx, q, "failed", "", w.now()); err != nil {
			log.Warn("failed status not written to the message document", "err", err)
		}
	}
}
