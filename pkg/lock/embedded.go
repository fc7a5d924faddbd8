package lock

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// EmbeddedOptions configure the one-host backend.
type EmbeddedOptions struct {
	DataDir    string // required; the lock is on DataDir and <DataDir>/wactl.lock (flock.go)
	InstanceID string // required
	Host       string // default os.Hostname()
	// Poll: how often a PASSIVE process tries the lock, and how often the
	// holder checks that the lock file was not deleted. Default 1 s: a
	// flock attempt costs one system call.
	Poll   time.Duration
	Clock  Clock
	Logger *slog.Logger
	Callbacks
}

// Embedded is the flock backend: the kernel releases the lock when its
// holder dies, so there is no lease to expire and no renewal to miss.
type Embedded struct {
	opt       EmbeddedOptions
	host      string
	pid       int
	startedAt time.Time
	log       *slog.Logger

	mu      sync.Mutex
	st      Status
	active  bool
	running bool
}

var _ Lock = (*Embedded)(nil)

// NewEmbedded checks the options; Run does the work.
func NewEmbedded(o EmbeddedOptions) (*Embedded, error) {
	if o.InstanceID == "" {
		return nil, errors.New("lock: no instance id: set instance_id (or INSTANCE_ID)")
	}
	dir, err := absDir(o.DataDir)
	if err != nil {
		return nil, err
	}
	if dir == "" {
		return nil, errors.New("lock: the embedded lock needs a data dir: set data_dir (or STATE_DIRECTORY)")
	}
	o.DataDir = dir
	host, err := hostOr(o.Host)
	if err != nil {
		return nil, err
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.Clock == nil {
		o.Clock = SystemClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	e := &Embedded{opt: o, host: host, pid: os.Getpid(), startedAt: o.Clock.Now(),
		log: o.Logger.With("component", "lock", "backend", "embedded", "dir", dir)}
	e.st = Status{Backend: "embedded", LockStatus: Unknown, WAMode: Passive, InstanceID: o.InstanceID, Reason: "starting"}
	return e, nil
}

// Status implements Lock.
func (e *Embedded) Status() Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.st
}

// Fence implements Lock.
func (e *Embedded) Fence() (int64, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.active {
		return 0, false
	}
	return e.st.Epoch, true
}

// StreamReplaced implements Lock. The flock cannot be shared, so a replaced
// stream means a client outside this host (or a copied session): report it.
func (e *Embedded) StreamReplaced(detail string) {
	e.mu.Lock()
	if e.active {
		e.st.Conflict = "WhatsApp replaced a connection while this process held the data dir lock (" + detail +
			"): the account is used from elsewhere (a copied session or another deployment)"
	}
	e.mu.Unlock()
	e.log.Warn("stream replaced while holding the lock", "detail", detail)
}

// Inspect implements Lock without taking the lock.
func (e *Embedded) Inspect(ctx context.Context) (Status, error) {
	s := Status{Backend: "embedded", WAMode: Passive, InstanceID: e.opt.InstanceID}
	if _, active := e.Fence(); active {
		return e.Status(), nil
	}
	held, err := probeDir(e.opt.DataDir)
	if err != nil {
		s.LockStatus = Unknown
		return s, fmt.Errorf("lock: probe %s: %w", e.opt.DataDir, err)
	}
	if !held {
		s.LockStatus = NotHeld
		return s, nil
	}
	h, err := readHolder(e.opt.DataDir)
	if err != nil {
		s.LockStatus, s.Reason = HeldByOther, "held; holder file unreadable: "+err.Error()
		return s, nil
	}
	s.Holder = Holder{InstanceID: h.InstanceID, Host: h.Host, PID: h.PID, StartedAt: h.StartedAt}
	s.Epoch = h.Epoch
	s.LockStatus = HeldByOther
	if h.InstanceID == e.opt.InstanceID {
		s.LockStatus = HeldByThisInstance
	}
	return s, nil
}

// Run implements Lock.
func (e *Embedded) Run(ctx context.Context) error {
	e.mu.Lock()
	if e.running {
		e.mu.Unlock()
		return errors.New("lock: Run called twice")
	}
	e.running = true
	e.mu.Unlock()
	for {
		fl, err := waitDirLock(ctx, e.opt.DataDir, e.opt.Poll, e.opt.Clock, func(reason string, h Holder) {
			e.mu.Lock()
			e.st.LockStatus, e.st.Reason, e.st.Holder = HeldByOther, reason, h
			e.mu.Unlock()
		})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		lost := e.hold(ctx, fl)
		fl.Unlock()
		if !lost {
			return nil
		}
	}
}

// hold runs while this process has the flock; it returns true when the lock
// file was deleted or replaced under it (the lock is then worthless).
func (e *Embedded) hold(ctx context.Context, fl *FileLock) (lost bool) {
	var epoch int64
	switch prev, err := readHolder(e.opt.DataDir); {
	case err == nil:
		epoch = max(prev.Epoch, 0) + 1
	case errors.Is(err, os.ErrNotExist):
		epoch = 1
	default:
		// Unreadable: jump past any epoch reached by +1 steps so that
		// fenced writers never see it go backwards.
		epoch = e.opt.Clock.Now().UnixMilli()
	}
	if err := fl.writeHolder(holderFile{Backend: "embedded", InstanceID: e.opt.InstanceID, Host: e.host,
		PID: e.pid, StartedAt: e.startedAt, Epoch: epoch}); err != nil {
		e.log.Warn("cannot write the lock holder file (information only)", "err", err)
	}
	e.mu.Lock()
	e.active = true
	e.st = Status{Backend: "embedded", LockStatus: HeldByThisInstance, WAMode: Active, InstanceID: e.opt.InstanceID,
		Epoch: epoch, Holder: Holder{InstanceID: e.opt.InstanceID, Host: e.host, PID: e.pid, StartedAt: e.startedAt, DataDir: e.opt.DataDir}}
	e.mu.Unlock()
	e.log.Info("data dir lock acquired: ACTIVE", "epoch", epoch)
	e.opt.active(epoch)

	reason := "shutdown"
watch:
	for {
		select {
		case <-ctx.Done():
			break watch
		case <-e.opt.Clock.After(e.opt.Poll):
			if ok, err := fl.StillOwned(); err != nil || !ok {
				reason, lost = fmt.Sprintf("lock file %s was removed or replaced (%v)", LockFileName, err), true
				break watch
			}
		}
	}
	e.mu.Lock()
	e.active = false
	e.st.WAMode, e.st.Reason = Passive, reason
	if lost {
		e.st.LockStatus = Unknown
	} else {
		e.st.LockStatus = NotHeld
	}
	e.mu.Unlock()
	e.log.Warn("stepping down: PASSIVE", "reason", reason)
	e.opt.passive(reason)
	return lost
}
