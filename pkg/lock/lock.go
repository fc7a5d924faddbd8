package lock

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Lock is what serve, pair and doctor use; both backends implement it.
type Lock interface {
	// Run acquires, renews and retries until ctx ends, calling OnActive and
	// OnPassive as the mode changes. When ctx ends it steps down (OnPassive
	// with reason "shutdown") and then releases the lease so that the next
	// process takes over without waiting for the TTL. It returns nil after a
	// clean shutdown, or an error that prevents any attempt (bad options,
	// unusable data dir).
	Run(ctx context.Context) error
	// Status is the current view for /health, /ready and the dashboard.
	Status() Status
	// Fence returns the epoch of the lease this process holds and true
	// while it is ACTIVE; 0,false whenever it holds none (never another
	// holder's epoch, and already 0 inside OnPassive). Fenced writers write
	// nothing without it and store it so that the store refuses a write
	// older than the document's.
	Fence() (epoch int64, active bool)
	// Inspect reads the lease without taking or changing it (for doctor,
	// which runs beside the daemon).
	Inspect(ctx context.Context) (Status, error)
	// StreamReplaced tells the lock that WhatsApp replaced one of this
	// process's connections: evidence that someone else drives the account.
	// The lease is re-checked at once; losing it steps down.
	StreamReplaced(detail string)
}

// LockStatus values, as the legacy /health and /ready routes spell them.
type LockStatus string

const (
	HeldByThisInstance LockStatus = "held_by_this_instance"
	HeldByOther        LockStatus = "held_by_other"
	NotHeld            LockStatus = "not_held"
	Unknown            LockStatus = "unknown"
)

// Mode is waMode on /health: whether this process may connect to WhatsApp.
type Mode string

const (
	Active  Mode = "active"
	Passive Mode = "passive"
)

// Holder describes the process named in the lease. InstanceID is the
// holder as the lease names it: for the Firestore lease the document's
// holderInstanceId as written — "wactl:<id>" for a wactl holder
// (HolderID), the bare id for the old service or a wactl older than the
// prefix; for the embedded lock the bare id (no old service shares it).
type Holder struct {
	InstanceID string    `json:"instanceId"`
	Host       string    `json:"host,omitempty"`
	PID        int       `json:"pid,omitempty"`
	StartedAt  time.Time `json:"startedAt,omitzero"`
	DataDir    string    `json:"dataDir,omitempty"`
	Session    string    `json:"session,omitempty"`
}

// Status is a snapshot of the lock for health checks and doctor.
type Status struct {
	Backend    string     `json:"backend"` // "firestore" | "embedded"
	LockStatus LockStatus `json:"lockStatus"`
	WAMode     Mode       `json:"waMode"`
	InstanceID string     `json:"instanceId"`
	Holder     Holder     `json:"holder"`
	// LeaseUntil is on Firestore's clock (zero for the embedded backend,
	// whose lock does not expire while its holder lives).
	LeaseUntil   time.Time `json:"leaseUntil,omitzero"`
	RemainingSec float64   `json:"remainingSec"`
	Epoch        int64     `json:"epoch"`
	// Reason says why this process is passive (or last stepped down).
	Reason           string `json:"reason,omitempty"`
	LastRenewalError string `json:"lastRenewalError,omitempty"`
	// Conflict reports a configuration problem an operator must fix: two
	// hosts with one instance id, an unreadable lease document, a stream
	// replaced while holding the lease.
	Conflict string `json:"conflict,omitempty"`
}

// Timing of the lease. Zero fields take the defaults.
type Timing struct {
	TTL          time.Duration // lease length (Firestore clock)
	Renew        time.Duration // holder renews this often
	SafetyMargin time.Duration // holder steps down this long before the lease could expire
	Retry        time.Duration // passive processes re-read this often
	CallTimeout  time.Duration // bound on one read+write round trip
	// GarbageGrace: an unreadable lease document is taken over after
	// nobody wrote it for this long (Firestore clock).
	GarbageGrace time.Duration
}

// DefaultTiming: takeover within ~20 s, rides out Firestore blips of 10 s,
// about 17,000 writes a day (see the package documentation).
var DefaultTiming = Timing{TTL: 20 * time.Second, Renew: 5 * time.Second,
	SafetyMargin: 5 * time.Second, Retry: 5 * time.Second, CallTimeout: 5 * time.Second}

// LegacyTiming is the old Node service's 90/30/15 s profile.
var LegacyTiming = Timing{TTL: 90 * time.Second, Renew: 30 * time.Second,
	SafetyMargin: 15 * time.Second, Retry: 15 * time.Second, CallTimeout: 10 * time.Second}

// legacyTTL bounds how long a live holder of any format leaves the document
// unwritten (the Node service renews a 90 s lease every 30 s).
const legacyTTL = 90 * time.Second

// WithDefaults fills zero fields from DefaultTiming.
func (t Timing) WithDefaults() Timing {
	d := DefaultTiming
	if t.TTL == 0 {
		t.TTL = d.TTL
	}
	if t.Renew == 0 {
		t.Renew = min(d.Renew, t.TTL/4)
	}
	if t.SafetyMargin == 0 {
		t.SafetyMargin = min(d.SafetyMargin, t.TTL/4)
	}
	if t.Retry == 0 {
		t.Retry = min(d.Retry, t.TTL/4)
	}
	if t.CallTimeout == 0 {
		t.CallTimeout = min(d.CallTimeout, t.TTL-t.SafetyMargin)
	}
	if t.GarbageGrace == 0 {
		t.GarbageGrace = max(t.TTL, legacyTTL)
	}
	return t
}

// Validate names the bad value and what to choose instead.
func (t Timing) Validate() error {
	var errs []error
	if t.TTL <= 0 || t.Renew <= 0 || t.SafetyMargin <= 0 || t.Retry <= 0 || t.CallTimeout <= 0 {
		errs = append(errs, fmt.Errorf("lock timing: ttl, renew, safety margin, retry and call timeout must all be positive (got %+v)", t))
	}
	if t.SafetyMargin >= t.TTL {
		errs = append(errs, fmt.Errorf("lock timing: safety margin %s must be shorter than the TTL %s (e.g. a quarter of it)", t.SafetyMargin, t.TTL))
	}
	if t.Renew >= t.TTL-t.SafetyMargin {
		errs = append(errs, fmt.Errorf("lock timing: renew interval %s must be shorter than TTL − safety margin (%s), or the holder steps down between renewals; renew at most every %s",
			t.Renew, t.TTL-t.SafetyMargin, (t.TTL-t.SafetyMargin)/2))
	}
	if t.GarbageGrace < t.TTL {
		errs = append(errs, fmt.Errorf("lock timing: garbage grace %s must be at least the TTL %s", t.GarbageGrace, t.TTL))
	}
	return errors.Join(errs...)
}

// Callbacks run on the Run goroutine, one at a time, never concurrently.
// OnActive should start connecting in the background and return; OnPassive
// must have disconnected every WhatsApp client when it returns.
type Callbacks struct {
	OnActive  func(epoch int64)
	OnPassive func(reason string)
}

func (c Callbacks) active(epoch int64) {
	if c.OnActive != nil {
		c.OnActive(epoch)
	}
}

func (c Callbacks) passive(reason string) {
	if c.OnPassive != nil {
		c.OnPassive(reason)
	}
}
