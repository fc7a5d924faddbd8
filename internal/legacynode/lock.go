// Package legacynode is test support: it behaves like the old Node.js
// service (whatsapp-backend, 692eef65) that wactl replaces, against a
// Firestore emulator, so that cutover and coexistence tests run the old
// writer's protocol exactly instead of an idea of it.
//
// lock.go is the old service's global connection lock, as described in
// ../shared/reference/legacy-contract.md:
//
//   - document wa_metrics/longrun/locks/wa_connection with holderInstanceId,
//     leaseUntil (number, epoch ms of the old service's own clock),
//     acquiredAt, updatedAt, previousHolder;
//   - one transaction per attempt: absent → create; expired (leaseUntil <
//     now) → take over; holderInstanceId equal to its own INSTANCE_ID →
//     extend (whatever else the document says); else held by another;
//   - take over and extend are MERGE updates of those five fields: fields
//     another writer added (wactl's host, pid, session, epoch, binding) stay
//     as they were;
//   - lease 90 s, renewed every 30 s; a passive instance retries every 15 s
//     (all multiplied by Options.Scale in tests);
//   - on stop (SIGINT/SIGTERM) the deployed version exits before its release
//     code runs: the document is NOT deleted and the lease runs out.
//
// The old service did not close its WhatsApp sockets when a renewal found
// the lease held by another; the simulator reports that moment through
// OnPassive (the old service's waMode flag), which is the most favourable
// reading for a "never two ACTIVE" check.
package legacynode

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// DocPath is the old service's lock document.
const DocPath = "wa_metrics/longrun/locks/wa_connection"

// The old service's timing.
const (
	LeaseDuration = 90 * time.Second
	RenewInterval = 30 * time.Second
	RetryInterval = 15 * time.Second
)

// LockOptions configure one simulated old-service instance.
type LockOptions struct {
	Client     *firestore.Client // required
	DocPath    string            // default DocPath
	InstanceID string            // required (the old unit's INSTANCE_ID=%H)
	// Scale multiplies the 90/30/15 s timing (0 or 1: real time; 0.02:
	// 1.8 s / 0.6 s / 0.3 s).
	Scale float64
	// Now is the old service's Date.now() (default time.Now).
	Now       func() time.Time
	OnActive  func()
	OnPassive func(reason string)
}

// Lock is one simulated old-service instance's lock loop.
type Lock struct {
	o   LockOptions
	doc *firestore.DocumentRef

	mu     sync.Mutex
	active bool
}

// NewLock checks the options.
func NewLock(o LockOptions) (*Lock, error) {
	if o.Client == nil || o.InstanceID == "" {
		return nil, errors.New("legacynode: Client and InstanceID are required")
	}
	if o.DocPath == "" {
		o.DocPath = DocPath
	}
	if o.Scale <= 0 {
		o.Scale = 1
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Lock{o: o, doc: o.Client.Doc(o.DocPath)}, nil
}

func (l *Lock) scaled(d time.Duration) time.Duration { return time.Duration(float64(d) * l.o.Scale) }

// Lease, Renew and Retry are the scaled durations.
func (l *Lock) Lease() time.Duration { return l.scaled(LeaseDuration) }
func (l *Lock) Renew() time.Duration { return l.scaled(RenewInterval) }
func (l *Lock) Retry() time.Duration { return l.scaled(RetryInterval) }

// Active is the old service's waMode == "active".
func (l *Lock) Active() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.active
}

// Outcome of one attempt, as the old service names it.
type Outcome string

const (
	Created      Outcome = "created"
	TookOver     Outcome = "took_over"
	Extended     Outcome = "extended"
	HeldByOther  Outcome = "held_by_other"
	AttemptError Outcome = "error"
)

// Acquire is one transactional attempt.
func (l *Lock) Acquire(ctx context.Context) (Outcome, error) {
	var out Outcome
	err := l.o.Client.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		snap, err := tx.Get(l.doc)
		now := l.o.Now().UnixMilli()
		until := now + l.Lease().Milliseconds()
		if status.Code(err) == codes.NotFound {
			out = Created
			return tx.Create(l.doc, map[string]any{
				"holderInstanceId": l.o.InstanceID,
				"leaseUntil":       until,
				"acquiredAt":       firestore.ServerTimestamp,
				"updatedAt":        firestore.ServerTimestamp,
				"previousHolder":   nil,
			})
		}
		if err != nil {
			return err
		}
		d := snap.Data()
		holder, _ := d["holderInstanceId"].(string)
		var leaseUntil float64
		switch v := d["leaseUntil"].(type) {
		case int64:
			leaseUntil = float64(v)
		case float64:
			leaseUntil = v
		}
		// JavaScript: `data.leaseUntil < now` (a missing or non-number
		// leaseUntil is NaN/undefined there and never "expired"; such a
		// document is simply held).
		switch {
		case leaseUntil != 0 && leaseUntil < float64(now):
			out = TookOver
			return tx.Set(l.doc, map[string]any{
				"holderInstanceId": l.o.InstanceID,
				"leaseUntil":       until,
				"acquiredAt":       firestore.ServerTimestamp,
				"updatedAt":        firestore.ServerTimestamp,
				"previousHolder":   holder,
			}, firestore.MergeAll)
		case holder == l.o.InstanceID:
			out = Extended
			return tx.Set(l.doc, map[string]any{
				"holderInstanceId": l.o.InstanceID,
				"leaseUntil":       until,
				"updatedAt":        firestore.ServerTimestamp,
			}, firestore.MergeAll)
		default:
			out = HeldByOther
			return nil
		}
	})
	if err != nil {
		return AttemptError, fmt.Errorf("legacynode: acquire: %w", err)
	}
	return out, nil
}

// Run acquires, renews and retries until ctx ends. Like the deployed old
// service it does not delete the document when it stops.
func (l *Lock) Run(ctx context.Context) error {
	for {
		out, err := l.Acquire(ctx)
		if ctx.Err() != nil {
			l.set(false, "stopped (lease left to expire)")
			return nil
		}
		got := err == nil && out != HeldByOther
		switch {
		case err != nil:
			// The old service kept its mode on a failed call.
		case got:
			l.set(true, "")
		default:
			l.set(false, "lease held by another instance")
		}
		wait := l.Retry()
		if l.Active() {
			wait = l.Renew()
		}
		select {
		case <-ctx.Done():
			l.set(false, "stopped (lease left to expire)")
			return nil
		case <-time.After(wait):
		}
	}
}

func (l *Lock) set(active bool, reason string) {
	l.mu.Lock()
	was := l.active
	l.active = active
	l.mu.Unlock()
	switch {
	case active && !was && l.o.OnActive != nil:
		l.o.OnActive()
	case !active && was && l.o.OnPassive != nil:
		l.o.OnPassive(reason)
	}
}
