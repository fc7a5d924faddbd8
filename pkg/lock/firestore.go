package lock

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// DefaultDocPath is the Node service's lease document.
const DefaultDocPath = "wa_metrics/longrun/locks/wa_connection"

// FirestoreOptions configure the Firestore backend.
type FirestoreOptions struct {
	Client     *firestore.Client // required
	DocPath    string            // default DefaultDocPath
	InstanceID string            // required; from configuration, never random
	Host       string            // default os.Hostname()
	// DataDir: the backend holds the flock on <DataDir>/wactl.lock for as
	// long as Run runs (waiting PASSIVE while another process holds it).
	// That flock is the proof that lets a restarted process reclaim its own
	// unexpired lease at once. Empty: no proof, a restart waits for expiry.
	DataDir string
	Timing  Timing
	Clock   Clock        // default SystemClock
	Logger  *slog.Logger // default slog.Default()
	Callbacks
}

// Firestore is the lease in a Firestore document.
type Firestore struct {
	opt       FirestoreOptions
	doc       *firestore.DocumentRef
	epochDoc  *firestore.DocumentRef // epoch.go: never deleted with the lease
	me        self
	pid       int
	startedAt time.Time
	log       *slog.Logger
	kick      chan struct{}

	mu     sync.Mutex
	st     Status
	active bool
	// held and heldUntil are what Fence reports: the epoch this process
	// holds and the Mono() deadline past which it may hold it no longer.
	// Status.Epoch is the document's epoch, which after a takeover is the
	// new holder's and must never reach a fenced writer.
	held      int64
	heldUntil time.Duration
	readMono  time.Duration // Mono() when the last snapshot was read
	readTime  time.Time     // its ReadTime
	garbageAt time.Time     // update time of the last unreadable doc logged
	running   bool
	streamMsg string // StreamReplaced evidence, kept until the next change of mode
	// watch.go: the lease listener waits for a step up and stops at a
	// step down.
	upCh    chan struct{}
	downFns map[int]func()
	downSeq int
	// readTimeHook, when set (tests only), replaces the read time of each
	// lease read: Firestore may give two reads of an absent document one
	// read time, which the emulator does not do on demand.
	readTimeHook func(time.Time) time.Time
}

var _ Lock = (*Firestore)(nil)

// NewFirestore checks the options; Run does the work.
func NewFirestore(o FirestoreOptions) (*Firestore, error) {
	if o.Client == nil {
		return nil, errors.New("lock: no Firestore client")
	}
	if o.InstanceID == "" {
		return nil, errors.New("lock: no instance id: set instance_id (or INSTANCE_ID)")
	}
	if err := validInstanceID(o.InstanceID); err != nil {
		return nil, err
	}
	if o.DocPath == "" {
		o.DocPath = DefaultDocPath
	}
	doc := o.Client.Doc(o.DocPath)
	if doc == nil {
		return nil, fmt.Errorf("lock: %q is not a document path (it needs an even number of segments, e.g. %s)", o.DocPath, DefaultDocPath)
	}
	o.Timing = o.Timing.WithDefaults()
	if err := o.Timing.Validate(); err != nil {
		return nil, err
	}
	host, err := hostOr(o.Host)
	if err != nil {
		return nil, err
	}
	dir, err := absDir(o.DataDir)
	if err != nil {
		return nil, err
	}
	o.DataDir = dir
	if o.Clock == nil {
		o.Clock = SystemClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	f := &Firestore{
		opt:       o,
		doc:       doc,
		epochDoc:  o.Client.Doc(o.DocPath + epochDocSuffix),
		me:        self{InstanceID: o.InstanceID, Host: host, DataDir: dir, Session: newSession()},
		pid:       os.Getpid(),
		startedAt: o.Clock.Now(),
		log:       o.Logger.With("component", "lock", "backend", "firestore", "doc", o.DocPath),
		kick:      make(chan struct{}, 1),
	}
	f.st = Status{Backend: "firestore", LockStatus: Unknown, WAMode: Passive, InstanceID: o.InstanceID, Reason: "starting"}
	return f, nil
}

// Status implements Lock.
func (f *Firestore) Status() Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.st
	if !s.LeaseUntil.IsZero() && !f.readTime.IsZero() {
		left := s.LeaseUntil.Sub(f.readTime) - (f.opt.Clock.Mono() - f.readMono)
		s.RemainingSec = max(left, 0).Seconds()
	}
	return s
}

// Fence implements Lock: the epoch this process holds, or 0,false when it
// holds none — including the moment its renewal deadline passes, before
// the loop has noticed (a paused process that resumes).
func (f *Firestore) Fence() (int64, bool) {
	f.mu.Lock()
	held, until := f.held, f.heldUntil
	f.mu.Unlock()
	if held == 0 || f.opt.Clock.Mono() >= until {
		return 0, false
	}
	return held, true
}

// StreamReplaced implements Lock.
func (f *Firestore) StreamReplaced(detail string) {
	f.mu.Lock()
	if f.active {
		f.streamMsg = "WhatsApp replaced a connection while this process held the lease (" + detail +
			"): a client outside this lease uses the account (another deployment with another lease document, or a copied session)"
		f.st.Conflict = f.streamMsg
	}
	f.mu.Unlock()
	f.log.Warn("stream replaced: re-checking the lease now", "detail", detail)
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// Inspect implements Lock: one read, no write.
func (f *Firestore) Inspect(ctx context.Context) (Status, error) {
	ctx, cancel := context.WithTimeout(ctx, f.opt.Timing.CallTimeout)
	defer cancel()
	snap, exists, err := f.read(ctx)
	if err != nil {
		s := Status{Backend: "firestore", LockStatus: Unknown, WAMode: Passive, InstanceID: f.me.InstanceID,
			LastRenewalError: err.Error()}
		return s, fmt.Errorf("lock: read %s: %w (check the Firestore project, credentials and network)", f.opt.DocPath, err)
	}
	me := f.me
	me.SameHost = false // a read-only look never reclaims
	v := decide(me, exists, snapData(snap, exists), snap.ReadTime, snap.UpdateTime, f.opt.Timing)
	s := Status{Backend: "firestore", LockStatus: v.Status, WAMode: Passive, InstanceID: f.me.InstanceID,
		Holder: v.Lease.Holder, Epoch: v.Lease.Epoch, Reason: v.Reason, Conflict: v.Conflict}
	if _, active := f.Fence(); active {
		s.WAMode = Active
	}
	if v.Lease.CoreOK {
		s.LeaseUntil = time.UnixMilli(v.Lease.LeaseUntil)
		s.RemainingSec = max(s.LeaseUntil.Sub(snap.ReadTime), 0).Seconds()
		if s.RemainingSec > 0 && v.Lease.Wactl && sameInstance(v.Lease.Holder.InstanceID, f.me.InstanceID) &&
			v.Lease.Holder.Host == f.me.Host && len(v.Lease.Problems) == 0 {
			// doctor beside the daemon: "this instance" is a wactl
			// process with this instance id on this host. A lease under
			// this id that no wactl provably wrote is someone else's
			// (the old service with the same INSTANCE_ID).
			s.LockStatus = HeldByThisInstance
		}
	}
	return s, nil
}

func snapData(snap *firestore.DocumentSnapshot, exists bool) map[string]any {
	if !exists {
		return nil
	}
	return snap.Data()
}

func (f *Firestore) read(ctx context.Context) (*firestore.DocumentSnapshot, bool, error) {
	snap, err := f.doc.Get(ctx)
	if err != nil {
		if status.Code(err) == codes.NotFound && snap != nil && !snap.ReadTime.IsZero() {
			f.hookReadTime(snap)
			return snap, false, nil
		}
		return nil, false, err
	}
	f.hookReadTime(snap)
	return snap, true, nil
}

func (f *Firestore) hookReadTime(snap *firestore.DocumentSnapshot) {
	if f.readTimeHook != nil {
		snap.ReadTime = f.readTimeHook(snap.ReadTime)
	}
}

// outcome of one read (+ conditional write).
type outcome struct {
	v         verdict
	wrote     bool // the conditional write succeeded: the lease is ours
	contended bool // someone wrote between our read and our write
	err       error
}

// attempt reads the lease and, when the rules allow, writes it. While
// active it only ever renews: anything else means the lease was lost, and
// the caller steps down before contending again.
func (f *Firestore) attempt(ctx context.Context, timeout time.Duration, active bool) outcome {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	snap, exists, hw, err := f.readLeaseAndHighWater(ctx)
	if err != nil {
		return outcome{err: fmt.Errorf("read lease: %w", err)}
	}
	readMono := f.opt.Clock.Mono()
	me := f.me
	me.SameHost = f.opt.DataDir != "" // Run holds the data dir flock before contending
	v := decide(me, exists, snapData(snap, exists), snap.ReadTime, snap.UpdateTime, f.opt.Timing)
	f.noteRead(v, snap, readMono)
	if active && v.Act != actRenew {
		return outcome{v: v}
	}
	until := snap.ReadTime.Add(f.opt.Timing.TTL).UnixMilli()
	switch v.Act {
	case actWait:
		return outcome{v: v}
	case actCreate:
		v.Epoch = epochAbove(v.Epoch, hw)
		b := f.opt.Client.Batch()
		b.Create(f.doc, f.takeoverFields(v.Epoch, until, nil))
		f.writeHighWater(b, v.Epoch, hw)
		_, err = b.Commit(ctx)
	case actTakeOver:
		v.Epoch = epochAbove(v.Epoch, hw)
		var prev any
		if v.Lease.Holder.InstanceID != "" {
			prev = v.Lease.Holder.InstanceID
		}
		var ups []firestore.Update
		for k, val := range f.takeoverFields(v.Epoch, until, prev) {
			ups = append(ups, firestore.Update{Path: k, Value: val})
		}
		b := f.opt.Client.Batch()
		b.Update(f.doc, ups, firestore.LastUpdateTime(snap.UpdateTime))
		f.writeHighWater(b, v.Epoch, hw)
		_, err = b.Commit(ctx)
	case actRenew:
		_, err = f.doc.Update(ctx, []firestore.Update{
			{Path: fLeaseUntil, Value: until},
			{Path: fUpdatedAt, Value: firestore.ServerTimestamp},
			{Path: fBinding, Value: bindingOf(f.holder(), until, v.Epoch)},
		}, firestore.LastUpdateTime(snap.UpdateTime))
	}
	if c := status.Code(err); c == codes.FailedPrecondition || c == codes.NotFound || c == codes.AlreadyExists {
		return outcome{v: v, contended: true}
	}
	if err != nil {
		return outcome{v: v, err: fmt.Errorf("%s lease: %w", v.Act, err)}
	}
	f.mu.Lock()
	f.st.LeaseUntil = time.UnixMilli(until)
	f.st.Epoch = v.Epoch
	f.st.Holder = f.holder()
	f.st.LockStatus = HeldByThisInstance
	f.st.LastRenewalError = ""
	f.mu.Unlock()
	return outcome{v: v, wrote: true}
}

// takeoverFields is a whole lease in the Node service's format plus wactl's
// fields. acquiredAt/updatedAt are server timestamps so that no local clock
// is written either.
func (f *Firestore) takeoverFields(epoch, until int64, prev any) map[string]any {
	h := f.holder()
	return map[string]any{
		fBinding:        bindingOf(h, until, epoch),
		fHolder:         h.InstanceID,
		fLeaseUntil:     until,
		fAcquiredAt:     firestore.ServerTimestamp,
		fUpdatedAt:      firestore.ServerTimestamp,
		fPreviousHolder: prev,
		fEpoch:          epoch,
		fHost:           f.me.Host,
		fPID:            int64(f.pid),
		fStartedAt:      h.StartedAt,
		fDataDir:        f.me.DataDir,
		fSession:        f.me.Session,
	}
}

// holder is this process as the lease document names it: InstanceID is
// the holderInstanceId it writes, in wactl's form (HolderID). StartedAt is
// kept at the microsecond precision Firestore stores, so that the binding
// computed here matches the one recomputed from a read.
func (f *Firestore) holder() Holder {
	return Holder{InstanceID: HolderID(f.me.InstanceID), Host: f.me.Host, PID: f.pid,
		StartedAt: time.UnixMicro(f.startedAt.UnixMicro()).UTC(), DataDir: f.me.DataDir, Session: f.me.Session}
}

// noteRead records what a read showed, for Status, and logs unreadable
// documents once per version.
func (f *Firestore) noteRead(v verdict, snap *firestore.DocumentSnapshot, mono time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.readMono, f.readTime = mono, snap.ReadTime
	if len(v.Lease.Problems) > 0 && !snap.UpdateTime.Equal(f.garbageAt) {
		f.garbageAt = snap.UpdateTime
		f.log.Error("lease document is unreadable; treating the lock as unknown",
			"problems", v.Lease.Problems, "updateTime", snap.UpdateTime, "decision", v.Act.String(),
			"hint", "fix or delete the document only after stopping every instance")
	}
	if v.Conflict != "" && v.Conflict != f.st.Conflict {
		f.log.Error("lock conflict", "conflict", v.Conflict)
	}
	f.st.Conflict = v.Conflict
	if f.st.Conflict == "" {
		f.st.Conflict = f.streamMsg
	}
	if v.Act == actRenew && f.active {
		return // Status of the holder is updated after the write succeeds
	}
	f.st.LockStatus = v.Status
	f.st.Holder = v.Lease.Holder
	f.st.Epoch = v.Lease.Epoch
	f.st.LeaseUntil = v.ExpiresAt
	if !f.active {
		f.st.Reason = v.Reason
	}
}

// release expires this process's lease (epoch kept, holder fields cleared)
// so that the next process takes over at once.
func (f *Firestore) release(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, f.opt.Timing.CallTimeout)
	defer cancel()
	var lastErr error
	for range 3 {
		snap, exists, err := f.read(ctx)
		if err != nil {
			return errors.Join(lastErr, err)
		}
		if !exists {
			return nil
		}
		l := parseLease(snap.Data())
		if !l.Wactl || l.Holder.Session != f.me.Session {
			return nil // not ours (any more): nothing to release
		}
		ups := []firestore.Update{
			{Path: fLeaseUntil, Value: snap.ReadTime.UnixMilli()},
			{Path: fUpdatedAt, Value: firestore.ServerTimestamp},
		}
		// The holder fields go: what stays (holderInstanceId, an expired
		// leaseUntil, the epoch) names no live process.
		for _, k := range wactlHolderFields {
			ups = append(ups, firestore.Update{Path: k, Value: firestore.Delete})
		}
		_, err = f.doc.Update(ctx, ups, firestore.LastUpdateTime(snap.UpdateTime))
		switch {
		case err == nil:
			return nil
		case status.Code(err) == codes.FailedPrecondition:
			continue
		case ctx.Err() == nil:
			// An error does not say the write was not made: the answer
			// may be what got lost. The next read tells, and a release
			// that did not land is tried again instead of leaving the
			// standby to wait out the TTL.
			lastErr = err
			continue
		}
		return err
	}
	if lastErr != nil {
		return lastErr
	}
	return errors.New("lease changed during release three times")
}

func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d - d/10 + rand.N(d/5+1)
}
