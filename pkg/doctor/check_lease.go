package doctor

import (
	"context"
	"fmt"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/wactl/wactl/pkg/lock"
)

func checkLease(ctx context.Context, env *Env) Result {
	var r Result
	if env.Config == nil {
		r.Status, r.Summary = Skip, "skipped: no configuration"
		return r
	}
	cfg := env.Config
	backend := cfg.LockBackend()
	r.add("backend", backend)
	var l lock.Lock
	var readView func() (lock.LeaseView, error) // Firestore: the document as the old service sees it
	switch backend {
	case "embedded":
		e, err := lock.NewEmbedded(lock.EmbeddedOptions{DataDir: cfg.DataDir, InstanceID: cfg.InstanceID, Host: env.Hostname, Logger: env.Logger})
		if err != nil {
			r.fail("lock: " + err.Error())
			return r
		}
		l = e
	case "firestore":
		if env.Offline {
			r.Status, r.Summary = Skip, "skipped: --offline (the lease is in Firestore)"
			return r
		}
		c, err := env.firestoreClient(ctx)
		if err != nil {
			r.fail("Firestore: " + err.Error())
			return r
		}
		f, err := lock.NewFirestore(lock.FirestoreOptions{Client: c, DocPath: cfg.Lock.Document, InstanceID: cfg.InstanceID,
			Host: env.Hostname, DataDir: cfg.DataDir, Timing: lockTiming(env), Logger: env.Logger})
		if err != nil {
			r.fail("lock: " + err.Error())
			return r
		}
		l = f
		r.add("document", cfg.Lock.Document)
		readView = func() (lock.LeaseView, error) { return lock.ReadLease(ctx, c, cfg.Lock.Document) }
	default:
		r.fail(fmt.Sprintf("lock.backend %q: use auto, embedded or firestore", backend))
		return r
	}
	s, err := l.Inspect(ctx)
	r.add("lockStatus", s.LockStatus)
	if err != nil {
		r.fail(err.Error())
		return r
	}
	h := s.Holder
	r.add("holder", orDash(h.InstanceID))
	if h.Host != "" {
		r.add("holder_host", h.Host)
	}
	if h.PID != 0 {
		r.add("holder_pid", h.PID)
	}
	if !s.LeaseUntil.IsZero() {
		r.add("leaseUntil", s.LeaseUntil.UTC().Format(time.RFC3339))
		r.add("remainingSec", fmt.Sprintf("%.0f", s.RemainingSec))
	}
	r.add("this_instance", cfg.InstanceID)
	if s.Reason != "" {
		r.note("%s", s.Reason)
	}
	if readView != nil {
		if v, err := readView(); err == nil && legacyLease(&r, env, cfg, v) {
			return r
		}
	}
	switch {
	case s.Conflict != "":
		r.fail(s.Conflict)
	case s.LockStatus == lock.HeldByThisInstance:
		r.set(OK, "lease held by this instance ("+cfg.InstanceID+")")
	case s.LockStatus == lock.NotHeld:
		r.set(OK, "lease free: the next wactl serve takes it")
	case s.LockStatus == lock.HeldByOther:
		until := ""
		if !s.LeaseUntil.IsZero() {
			until = fmt.Sprintf(" until %s", s.LeaseUntil.UTC().Format(time.RFC3339))
		}
		r.warn(fmt.Sprintf("lease held by another instance %s%s: this instance stays PASSIVE (no WhatsApp connections)", describeHolder(h), until))
		stop := "sudo systemctl stop wactl   # on the holder's host"
		if h.Host != "" {
			stop = fmt.Sprintf("ssh %s sudo systemctl stop wactl   # the holder", h.Host)
		}
		r.fix(Fix{Summary: "run one active instance: stop the other one (or let its lease expire)", Commands: []string{stop}})
	default:
		r.fail(fmt.Sprintf("lease status %s: %s", s.LockStatus, s.Reason))
	}
	return r
}

func describeHolder(h lock.Holder) string {
	s := h.InstanceID
	if h.Host != "" {
		s += fmt.Sprintf(" (host %s, pid %d)", h.Host, h.PID)
	}
	return s
}

func lockTiming(env *Env) lock.Timing {
	l := env.Config.Lock
	return lock.Timing{TTL: l.TTL, Renew: l.RenewInterval, SafetyMargin: l.SafetyMargin, Retry: l.RetryInterval}.WithDefaults()
}

// clockDoc is the scratch document the skew check writes.
const clockCollection = "wa_metrics"

// checkClockSkew writes a server timestamp and compares Firestore's commit
// time with this host's clock at the middle of the round trip. The lease
// expiry is on Firestore's clock, so a skewed host misjudges it.
func checkClockSkew(ctx context.Context, env *Env) Result {
	var r Result
	if env.Config == nil {
		r.Status, r.Summary = Skip, "skipped: no configuration"
		return r
	}
	if env.Config.LockBackend() != "firestore" {
		r.Status, r.Summary = Skip, "skipped: the embedded lock does not depend on clocks"
		return r
	}
	c, err := env.firestoreClient(ctx)
	if err != nil {
		r.fail("Firestore: " + err.Error())
		return r
	}
	doc := c.Collection(clockCollection).Doc("doctor_clock_" + env.Config.InstanceID)
	t0 := env.Now().Add(env.ClockOffset)
	wr, err := doc.Set(ctx, map[string]any{"at": firestore.ServerTimestamp, "host": env.Hostname, "instanceId": env.Config.InstanceID})
	t1 := env.Now().Add(env.ClockOffset)
	if err != nil {
		r.fail("write to Firestore: " + err.Error())
		return r
	}
	rtt := t1.Sub(t0)
	local := t0.Add(rtt / 2)
	skew := local.Sub(wr.UpdateTime)
	r.add("skew", skew.Round(time.Millisecond))
	r.add("uncertainty", (rtt / 2).Round(time.Millisecond))
	r.add("server_time", wr.UpdateTime.UTC().Format(time.RFC3339Nano))
	abs := skew
	if abs < 0 {
		abs = -abs
	}
	abs -= rtt / 2 // only what the round trip cannot explain
	fix := Fix{Summary: "synchronise the clock", Commands: []string{"sudo timedatectl set-ntp true", "timedatectl timesync-status"}}
	switch {
	case abs > env.SkewFail:
		r.fail(fmt.Sprintf("this host's clock is %s off Firestore's (more than the lease safety margin %s)", skew.Round(time.Millisecond), env.SkewFail))
		r.fix(fix)
	case abs > env.SkewWarn:
		r.warn(fmt.Sprintf("this host's clock is %s off Firestore's", skew.Round(time.Millisecond)))
		r.fix(fix)
	default:
		r.set(OK, fmt.Sprintf("clock within %s of Firestore's", skew.Abs().Round(time.Millisecond)))
	}
	return r
}
