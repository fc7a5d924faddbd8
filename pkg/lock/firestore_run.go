package lock

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Run implements Lock.
func (f *Firestore) Run(ctx context.Context) error {
	f.mu.Lock()
	if f.running {
		f.mu.Unlock()
		return errors.New("lock: Run called twice")
	}
	f.running = true
	f.mu.Unlock()

	if f.opt.DataDir != "" {
		fl, err := waitDirLock(ctx, f.opt.DataDir, f.opt.Timing.Retry, f.opt.Clock, f.setWaiting)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		defer fl.Unlock()
		if err := fl.writeHolder(holderFile{Backend: "firestore", InstanceID: f.me.InstanceID, Host: f.me.Host,
			PID: f.pid, StartedAt: f.startedAt}); err != nil {
			f.log.Warn("cannot write the lock holder file (information only)", "err", err)
		}
	}
	wctx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() { defer close(watched); f.watchWhileActive(wctx) }()
	f.loop(ctx)
	stopWatch()
	<-watched
	return nil
}

func (f *Firestore) setWaiting(reason string, h Holder) {
	f.mu.Lock()
	f.st.LockStatus, f.st.Reason, f.st.Holder = HeldByOther, reason, h
	f.mu.Unlock()
}

// loop is the acquire/renew/retry state machine. Deadlines are on the
// injected monotonic clock; Firestore calls are bounded so that none can
// keep the process ACTIVE past its deadline.
func (f *Firestore) loop(ctx context.Context) {
	t := f.opt.Timing
	clk := f.opt.Clock
	var (
		active     bool
		epoch      int64
		validUntil time.Duration // step down at this Mono()
		next       time.Duration // next attempt at this Mono()
	)
	stepDown := func(reason string) {
		active = false
		f.mu.Lock()
		f.active = false
		f.held, f.heldUntil = 0, 0 // before OnPassive: nothing is written under the lost epoch
		for _, fn := range f.downFns {
			fn()
		}
		f.downFns = nil
		f.st.WAMode, f.st.Reason = Passive, reason
		f.streamMsg = ""
		f.mu.Unlock()
		lvl := slog.LevelWarn
		if reason == "shutdown" {
			lvl = slog.LevelInfo
		}
		f.log.Log(context.Background(), lvl, "stepping down: PASSIVE", "reason", reason, "epoch", epoch)
		f.opt.passive(reason)
	}
	defer func() {
		if active {
			stepDown("shutdown")
		}
		// ctx is done: release with a context of its own.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), t.CallTimeout)
		defer cancel()
		if err := f.release(rctx); err != nil {
			f.log.Warn("could not release the lease; others take over when it expires", "err", err, "ttl", t.TTL)
		}
	}()
	for {
		// Wait for the next attempt, watching the deadline while ACTIVE.
		for {
			now := clk.Mono()
			if active && now >= validUntil {
				stepDown(fmt.Sprintf("lease renewal not confirmed within %s (TTL %s − safety margin %s)", t.TTL-t.SafetyMargin, t.TTL, t.SafetyMargin))
				next = now
			}
			if now >= next {
				break
			}
			d := next - now
			if active {
				d = min(d, validUntil-now)
			}
			// Wake at least every 250 ms: Mono() may jump (suspend), and
			// timers do not see that.
			d = min(d, 250*time.Millisecond)
			select {
			case <-ctx.Done():
				return
			case <-f.kick:
				next = clk.Mono()
			case <-clk.After(d):
			}
		}
		if ctx.Err() != nil {
			return
		}
		send := clk.Mono()
		timeout := t.CallTimeout
		if active {
			timeout = min(timeout, validUntil-send)
		}
		out := f.attempt(ctx, timeout, active)
		now := clk.Mono()
		if ctx.Err() != nil {
			return
		}
		switch {
		case out.err != nil:
			f.mu.Lock()
			f.st.LastRenewalError = out.err.Error()
			if !active {
				f.st.LockStatus = Unknown
				f.st.Reason = "cannot read the lease: " + out.err.Error()
			}
			f.mu.Unlock()
			f.log.Warn("lease call failed", "err", out.err, "active", active)
			if active {
				next = now + min(t.Renew, t.Retry)/2
			} else {
				next = now + jitter(t.Retry)
			}
		case out.contended:
			// Someone wrote between our read and our write: read again.
			next = now
		case out.wrote:
			valid := send + t.TTL - t.SafetyMargin
			if now >= valid {
				// Confirmed too late to be of use; the loop renews at once.
				if active {
					stepDown("lease renewal confirmed too late")
				}
				next = now
				continue
			}
			validUntil, next = valid, send+t.Renew
			if active && out.v.Epoch == epoch {
				f.mu.Lock()
				f.heldUntil = valid
				f.mu.Unlock()
			}
			if !active || out.v.Epoch != epoch {
				if active {
					stepDown("epoch changed")
				}
				active, epoch = true, out.v.Epoch
				f.mu.Lock()
				f.active = true
				f.held, f.heldUntil = epoch, valid
				if f.upCh != nil {
					close(f.upCh)
					f.upCh = nil
				}
				f.st.WAMode, f.st.Reason = Active, ""
				f.mu.Unlock()
				f.log.Info("lease acquired: ACTIVE", "epoch", epoch, "how", out.v.Act.String(), "why", out.v.Reason)
				f.opt.active(epoch)
			}
		default: // the rules say wait
			if active {
				stepDown("lease lost: " + out.v.Reason)
				next = now
				continue
			}
			next = now + f.passiveWait(out.v)
		}
	}
}

// passiveWait re-reads after Retry, or just after the lease can expire when
// that comes sooner (judged on the durations Firestore's clock gave, not on
// local wall time).
func (f *Firestore) passiveWait(v verdict) time.Duration {
	d := jitter(f.opt.Timing.Retry)
	f.mu.Lock()
	readTime := f.readTime
	f.mu.Unlock()
	if !v.ExpiresAt.IsZero() && !readTime.IsZero() {
		if left := v.ExpiresAt.Sub(readTime); left >= 0 && left < d {
			d = left + 20*time.Millisecond + jitter(20*time.Millisecond)
		}
	}
	return d
}

// waitDirLock takes the data dir's flock, waiting PASSIVE while another
// process holds it.
func waitDirLock(ctx context.Context, dir string, every time.Duration, clk Clock, waiting func(string, Holder)) (*FileLock, error) {
	for {
		fl, err := TryLockDir(dir)
		if err == nil {
			return fl, nil
		}
		if !errors.Is(err, ErrHeld) {
			return nil, err
		}
		h, herr := readHolder(dir)
		reason := fmt.Sprintf("data dir %s is locked by another process", dir)
		if herr == nil {
			reason += fmt.Sprintf(" (instance %s, pid %d)", h.InstanceID, h.PID)
		}
		waiting(reason, Holder{InstanceID: h.InstanceID, Host: h.Host, PID: h.PID, StartedAt: h.StartedAt})
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-clk.After(jitter(every)):
		}
	}
}
