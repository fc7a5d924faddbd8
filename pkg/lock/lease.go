package lock

import (
	"fmt"
	"math"
	"time"
)

// Field names of the lease document. The first five are the Node service's
// and keep their meaning and types; the rest are wactl's.
const (
	fHolder         = "holderInstanceId"
	fLeaseUntil     = "leaseUntil" // number, epoch ms on Firestore's clock
	fAcquiredAt     = "acquiredAt"
	fUpdatedAt      = "updatedAt"
	fPreviousHolder = "previousHolder"
	fEpoch          = "epoch"
	fHost           = "holderHost"
	fPID            = "holderPid"
	fStartedAt      = "holderStartedAt"
	fDataDir        = "holderDataDir"
	fSession        = "holderSession"
	// fBinding proves that the wactl fields belong to the current holder
	// fields (binding.go); the Node service's merge takeover leaves it
	// stale.
	fBinding = "holderBinding"
)

// wactlHolderFields are cleared on release: left behind, they would make a
// later holder's document look like a particular wactl process's.
var wactlHolderFields = []string{fHost, fPID, fStartedAt, fDataDir, fSession, fBinding}

// lease is a parsed lease document.
type lease struct {
	Holder     Holder
	LeaseUntil int64 // ms
	Epoch      int64 // 0 when absent or unreadable
	// CoreOK: holderInstanceId and leaseUntil are readable, so expiry can
	// be judged from the document itself.
	CoreOK bool
	// Wactl: every wactl field is present and readable and the binding
	// matches the holder fields, so the document was written by the wactl
	// process it names. Otherwise it is treated as the Node service's
	// lease, and Holder carries the instance id only.
	Wactl bool
	// Stale: wactl fields are present but do not belong to the current
	// holder (the Node service took the lease over with a merge update).
	Stale bool
	// Problems lists fields of the wrong type or missing; any problem makes
	// the status "unknown".
	Problems []string
}

// parseLease never fails: what it cannot read it reports in Problems, and
// the caller decides conservatively.
func parseLease(data map[string]any) lease {
	var l lease
	problem := func(f, format string, args ...any) {
		l.Problems = append(l.Problems, f+": "+fmt.Sprintf(format, args...))
	}
	holderOK, untilOK := false, false
	switch v := data[fHolder].(type) {
	case string:
		if v == "" {
			problem(fHolder, "empty")
		} else {
			l.Holder.InstanceID, holderOK = v, true
		}
	case nil:
		problem(fHolder, "missing")
	default:
		problem(fHolder, "%T, want string", v)
	}
	if ms, err := number(data[fLeaseUntil]); err != nil {
		problem(fLeaseUntil, "%v", err)
	} else {
		l.LeaseUntil, untilOK = ms, true
	}
	l.CoreOK = holderOK && untilOK

	if v, ok := data[fEpoch]; ok {
		if e, err := number(v); err != nil || e <= 0 {
			problem(fEpoch, "want a positive integer (%v)", errOr(err, "not positive"))
		} else {
			l.Epoch = e
		}
	}
	if _, ok := data[fBinding]; !ok {
		// Node format, or a lease released by wactl (holder fields
		// cleared): leftovers of wactl fields prove nothing.
		_, l.Stale = data[fSession]
		return l
	}
	var h Holder
	readable := true
	str := func(f string, dst *string, emptyOK bool) {
		switch v := data[f].(type) {
		case string:
			if v == "" && !emptyOK {
				problem(f, "empty")
				readable = false
			}
			*dst = v
		default:
			problem(f, "%T, want string", v)
			readable = false
		}
	}
	var binding string
	str(fBinding, &binding, false)
	str(fSession, &h.Session, false)
	str(fHost, &h.Host, false)
	str(fDataDir, &h.DataDir, true) // empty: a holder run without a data dir
	if pid, err := number(data[fPID]); err != nil || pid <= 0 || pid > math.MaxInt32 {
		problem(fPID, "want a process id (%v)", errOr(err, "out of range"))
		readable = false
	} else {
		h.PID = int(pid)
	}
	switch v := data[fStartedAt].(type) {
	case time.Time:
		h.StartedAt = v
	default:
		problem(fStartedAt, "%T, want timestamp", v)
		readable = false
	}
	if _, ok := data[fEpoch]; !ok {
		problem(fEpoch, "missing")
		readable = false
	}
	if !readable || !l.CoreOK || l.Epoch <= 0 {
		return l
	}
	h.InstanceID = l.Holder.InstanceID
	if binding != bindingOf(h, l.LeaseUntil, l.Epoch) {
		l.Stale = true
		return l
	}
	l.Holder, l.Wactl = h, true
	return l
}

func errOr(err error, s string) string {
	if err != nil {
		return err.Error()
	}
	return s
}

// number reads an integer the way the Node service writes numbers: Firestore
// integers, or doubles holding a whole number of ms.
func number(v any) (int64, error) {
	switch n := v.(type) {
	case int64:
		return n, nil
	case float64:
		if math.IsNaN(n) || math.IsInf(n, 0) || n < -(1<<53) || n > 1<<53 {
			return 0, fmt.Errorf("number %v out of range", n)
		}
		return int64(math.Floor(n)), nil
	case nil:
		return 0, fmt.Errorf("missing")
	default:
		return 0, fmt.Errorf("%T, want number", v)
	}
}

// self is what decide needs to know about this process.
type self struct {
	InstanceID string
	Host       string
	DataDir    string
	Session    string
	// SameHost: this process holds the data dir's flock, so no earlier
	// process that used the data dir is alive.
	SameHost bool
}

type action int

const (
	actWait     action = iota
	actCreate          // document absent
	actTakeOver        // new holder, new epoch
	actRenew           // this process's own lease, same epoch
)

func (a action) String() string {
	return [...]string{"wait", "create", "take over", "renew"}[a]
}

// verdict is decide's answer for one read of the lease document.
type verdict struct {
	Act    action
	Epoch  int64 // epoch to write (create/take over/renew)
	Status LockStatus
	// Lease as read (zero when absent).
	Lease lease
	// ExpiresAt: when the document as read stops protecting its holder, on
	// Firestore's clock (zero when absent).
	ExpiresAt time.Time
	Reason    string
	Conflict  string
}

// decide applies the lease rules to one snapshot. readTime and updateTime
// are the snapshot's, on Firestore's clock; nothing here reads a local clock.
func decide(me self, exists bool, data map[string]any, readTime, updateTime time.Time, t Timing) verdict {
	readMs := readTime.UnixMilli()
	if !exists {
		// The previous epoch is unknown (the Node service deletes the
		// document on release): jump to the read time so it never goes
		// backwards. The read time alone is not unique (two reads of an
		// absent document can share it): attempt raises it above the
		// high-water mark (epoch.go).
		return verdict{Act: actCreate, Epoch: readMs, Status: NotHeld, Reason: "no lease document"}
	}
	l := parseLease(data)
	v := verdict{Lease: l}
	nextEpoch := readMs
	if l.Epoch > 0 && l.Epoch < math.MaxInt64 {
		nextEpoch = max(l.Epoch+1, 1)
	}
	if len(l.Problems) > 0 {
		v.Conflict = fmt.Sprintf("lease document unreadable (%v)", l.Problems)
	}
	if !l.CoreOK {
		// Expiry cannot be read from the document: only Firestore's clock
		// proves that nobody renews it any more.
		v.ExpiresAt = updateTime.Add(t.GarbageGrace)
		v.Status = Unknown
		if !readTime.Before(v.ExpiresAt) {
			v.Act, v.Epoch = actTakeOver, nextEpoch
			v.Reason = fmt.Sprintf("taking over an unreadable lease document not written for %s", readTime.Sub(updateTime).Round(time.Second))
			return v
		}
		v.Reason = fmt.Sprintf("lease document unreadable; waiting until nobody has written it for %s", t.GarbageGrace)
		return v
	}
	v.ExpiresAt = time.UnixMilli(l.LeaseUntil)
	expired := readMs >= l.LeaseUntil
	mine := l.Wactl && l.Holder.Session == me.Session && l.Holder.InstanceID == HolderID(me.InstanceID) && l.Holder.Host == me.Host
	switch {
	case mine:
		v.Act, v.Epoch, v.Status = actRenew, l.Epoch, HeldByThisInstance
		return v
	case expired:
		v.Act, v.Epoch, v.Status = actTakeOver, nextEpoch, NotHeld
		v.Reason = fmt.Sprintf("lease of %s expired", l.Holder.InstanceID)
		if len(l.Problems) > 0 {
			v.Status = Unknown
		}
		return v
	}
	v.Status = HeldByOther
	if len(l.Problems) > 0 {
		v.Status = Unknown
	}
	v.Reason = fmt.Sprintf("lease held by %s", describe(l.Holder))
	if !sameInstance(l.Holder.InstanceID, me.InstanceID) {
		return v
	}
	// Live lease under our own instance id, written by another process:
	// wactl's form, or bare — the old service's, or an earlier wactl
	// version's (it wrote the id bare; its binding is valid).
	switch {
	case !l.Wactl && len(l.Problems) == 0:
		v.Conflict = fmt.Sprintf("the lease is held under this instance id (%s) by a process that is not wactl (the Node service?); nothing proves it is gone, so waiting for it to expire; give the old service and wactl different instance ids", me.InstanceID)
	case !l.Wactl:
		// Unreadable wactl fields: nothing proves which process wrote it.
	case l.Holder.Host != me.Host:
		v.Conflict = fmt.Sprintf("instance id %q is also used by host %q (pid %d): two hosts are configured with one instance id; give each host its own INSTANCE_ID", me.InstanceID, l.Holder.Host, l.Holder.PID)
	case l.Holder.DataDir != me.DataDir:
		v.Conflict = fmt.Sprintf("another wactl on this host (pid %d, data dir %s) runs with instance id %q; give it its own instance id", l.Holder.PID, l.Holder.DataDir, me.InstanceID)
	case !me.SameHost:
		v.Reason = fmt.Sprintf("lease held by an earlier process of this instance (pid %d); without the data dir lock nothing proves it is gone, so waiting for it to expire", l.Holder.PID)
	default:
		// Same host and data dir, and we hold the data dir's flock: the
		// process that wrote this lease is dead. Reclaim at once.
		v.Act, v.Epoch, v.Status = actTakeOver, nextEpoch, HeldByThisInstance
		v.Reason = fmt.Sprintf("reclaiming the lease of an earlier process of this instance (pid %d), which is gone", l.Holder.PID)
	}
	return v
}

func describe(h Holder) string {
	s := h.InstanceID
	if h.Host != "" {
		s += fmt.Sprintf(" (host %s, pid %d)", h.Host, h.PID)
	}
	return s
}
