package lock

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

var (
	t0    = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	fastT = Timing{TTL: 2 * time.Second}.WithDefaults()
)

// wactlDoc is a lease as wactl writes it: holderInstanceId "wactl:<id>".
func wactlDoc(instance, host, session string, epoch, until int64) map[string]any {
	return wactlDocAs(HolderID(instance), host, session, epoch, until)
}

// wactlDocV0 is a lease as wactl wrote it before the prefix: the bare id,
// bound like every wactl lease.
func wactlDocV0(instance, host, session string, epoch, until int64) map[string]any {
	return wactlDocAs(instance, host, session, epoch, until)
}

func wactlDocAs(holder, host, session string, epoch, until int64) map[string]any {
	h := Holder{InstanceID: holder, Host: host, PID: 1234, StartedAt: t0, DataDir: "/data", Session: session}
	return map[string]any{
		fHolder: holder, fLeaseUntil: until, fAcquiredAt: t0, fUpdatedAt: t0, fPreviousHolder: nil,
		fEpoch: epoch, fHost: host, fPID: int64(1234), fStartedAt: t0, fDataDir: "/data", fSession: session,
		fBinding: bindingOf(h, until, epoch),
	}
}

// nodeMerge is the Node service's takeover (or "extend" of a lease under
// its own id): a merge update of its five fields over whatever is there.
func nodeMerge(d map[string]any, holder string, until int64) map[string]any {
	out := map[string]any{}
	for k, v := range d {
		out[k] = v
	}
	prev := out[fHolder]
	out[fHolder], out[fLeaseUntil], out[fAcquiredAt], out[fUpdatedAt], out[fPreviousHolder] = holder, float64(until), t0, t0, prev
	return out
}

// released is wactlDoc after wactl's release: expired, holder fields gone.
func released(instance string, epoch, at int64) map[string]any {
	return map[string]any{fHolder: HolderID(instance), fLeaseUntil: at, fAcquiredAt: t0, fUpdatedAt: t0, fPreviousHolder: nil, fEpoch: epoch}
}

func TestDecide(t *testing.T) {
	me := self{InstanceID: "a", Host: "h1", DataDir: "/data", Session: "s-me", SameHost: true}
	read := t0
	ms := read.UnixMilli()
	node := map[string]any{fHolder: "node-1", fLeaseUntil: float64(ms + 1000), fAcquiredAt: ms - 5000, fUpdatedAt: ms - 100, fPreviousHolder: nil}
	cases := []struct {
		name     string
		me       self
		exists   bool
		data     map[string]any
		update   time.Time
		act      action
		epoch    int64
		status   LockStatus
		conflict string
	}{
		{"absent", me, false, nil, time.Time{}, actCreate, ms, NotHeld, ""},
		{"node fresh", me, true, node, read, actWait, 0, HeldByOther, ""},
		{"node expired exactly at read time", me, true, map[string]any{fHolder: "node-1", fLeaseUntil: ms}, read, actTakeOver, ms, NotHeld, ""},
		{"own session renews", me, true, wactlDoc("a", "h1", "s-me", 7, ms+5), read, actRenew, 7, HeldByThisInstance, ""},
		{"own session renews even expired", me, true, wactlDoc("a", "h1", "s-me", 7, ms-5), read, actRenew, 7, HeldByThisInstance, ""},
		{"other fresh", me, true, wactlDoc("b", "h2", "s-b", 7, ms+5), read, actWait, 0, HeldByOther, ""},
		{"other expired", me, true, wactlDoc("b", "h2", "s-b", 7, ms-1), read, actTakeOver, 8, NotHeld, ""},
		{"same instance same host reclaims", me, true, wactlDoc("a", "h1", "s-old", 7, ms+15000), read, actTakeOver, 8, HeldByThisInstance, ""},
		{"same instance without proof waits", self{InstanceID: "a", Host: "h1", DataDir: "/data", Session: "s-me"}, true, wactlDoc("a", "h1", "s-old", 7, ms+15000), read, actWait, 0, HeldByOther, ""},
		{"same instance other host", me, true, wactlDoc("a", "h2", "s-old", 7, ms+15000), read, actWait, 0, HeldByOther, "two hosts"},
		{"same instance other data dir", self{InstanceID: "a", Host: "h1", DataDir: "/other", Session: "s-me", SameHost: true}, true, wactlDoc("a", "h1", "s-old", 7, ms+15000), read, actWait, 0, HeldByOther, "data dir"},
		{"same instance node format", me, true, map[string]any{fHolder: "a", fLeaseUntil: ms + 1}, read, actWait, 0, HeldByOther, "not wactl"},
		// Written by wactl before the "wactl:" prefix (bare id, valid
		// binding): still this instance's after an upgrade.
		{"earlier version's lease of this instance is reclaimed", me, true, wactlDocV0("a", "h1", "s-old", 7, ms+15000), read, actTakeOver, 8, HeldByThisInstance, ""},
		{"earlier version's lease without proof waits", self{InstanceID: "a", Host: "h1", DataDir: "/data", Session: "s-me"}, true, wactlDocV0("a", "h1", "s-old", 7, ms+15000), read, actWait, 0, HeldByOther, ""},
		{"earlier version's lease on another host", me, true, wactlDocV0("a", "h2", "s-old", 7, ms+15000), read, actWait, 0, HeldByOther, "two hosts"},
		{"earlier version's expired lease is taken over", me, true, wactlDocV0("b", "h2", "s-b", 7, ms-1), read, actTakeOver, 8, NotHeld, ""},
		{"our session under the bare id is not ours to renew", me, true, wactlDocV0("a", "h1", "s-me", 7, ms+5), read, actTakeOver, 8, HeldByThisInstance, ""},
		{"another instance's prefixed lease is not ours", me, true, wactlDoc("b", "h1", "s-old", 7, ms+15000), read, actWait, 0, HeldByOther, ""},
		// Issue 15.1: Node (same instance id) took an expired wactl lease
		// over with a merge; wactl's host/pid/session/epoch stayed.
		{"node merge over an earlier wactl of this instance is not reclaimed", me, true,
			nodeMerge(wactlDoc("a", "h1", "s-old", 7, ms-60000), "a", ms+90000), read, actWait, 0, HeldByOther, "not wactl"},
		{"node extend of our own lease is not ours", me, true,
			nodeMerge(wactlDoc("a", "h1", "s-me", 7, ms+5), "a", ms+90000), read, actWait, 0, HeldByOther, "not wactl"},
		{"node merge expired is taken over with the next epoch", me, true,
			nodeMerge(wactlDoc("b", "h2", "s-b", 7, ms-60000), "node-1", ms-1), read, actTakeOver, 8, NotHeld, ""},
		{"released lease is taken over with the next epoch", me, true, released("b", 7, ms-1), read, actTakeOver, 8, NotHeld, ""},
		{"released lease of this instance is not ours to renew", me, true, released("a", 7, ms-1), read, actTakeOver, 8, NotHeld, ""},
		{"binding for another leaseUntil is not ours", me, true, func() map[string]any {
			d := wactlDoc("a", "h1", "s-me", 7, ms+5)
			d[fLeaseUntil] = ms + 50000
			return d
		}(), read, actWait, 0, HeldByOther, "not wactl"},
		{"garbage fresh", me, true, map[string]any{fHolder: int64(3), fLeaseUntil: "x"}, read.Add(-fastT.GarbageGrace + time.Millisecond), actWait, 0, Unknown, "unreadable"},
		{"garbage stale", me, true, map[string]any{fHolder: int64(3), fLeaseUntil: "x", fEpoch: int64(9)}, read.Add(-fastT.GarbageGrace), actTakeOver, 10, Unknown, "unreadable"},
		{"bad session type is not ours", me, true, func() map[string]any {
			d := wactlDoc("a", "h1", "s-me", 7, ms+5)
			d[fSession] = int64(1)
			return d
		}(), read, actWait, 0, Unknown, "unreadable"},
		{"bad epoch jumps on takeover", me, true, func() map[string]any {
			d := wactlDoc("b", "h2", "s-b", 7, ms-1)
			d[fEpoch] = "seven"
			return d
		}(), read, actTakeOver, ms, Unknown, "unreadable"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := decide(c.me, c.exists, c.data, read, c.update, fastT)
			if v.Act != c.act || v.Status != c.status || (c.act != actWait && v.Epoch != c.epoch) {
				t.Fatalf("got %s epoch %d status %s (%s); want %s epoch %d status %s", v.Act, v.Epoch, v.Status, v.Reason, c.act, c.epoch, c.status)
			}
			if c.conflict != "" && !strings.Contains(v.Conflict, c.conflict) {
				t.Fatalf("conflict %q, want it to mention %q", v.Conflict, c.conflict)
			}
			if c.conflict == "" && v.Conflict != "" {
				t.Fatalf("unexpected conflict %q", v.Conflict)
			}
		})
	}
}

func TestTimingValidate(t *testing.T) {
	for _, tm := range []Timing{DefaultTiming.WithDefaults(), LegacyTiming.WithDefaults(), fastT} {
		if err := tm.Validate(); err != nil {
			t.Errorf("%+v: %v", tm, err)
		}
	}
	bad := DefaultTiming.WithDefaults()
	bad.Renew = 16 * time.Second
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "renew interval") {
		t.Fatalf("renew ≥ TTL−margin accepted: %v", err)
	}
	bad = DefaultTiming.WithDefaults()
	bad.SafetyMargin = bad.TTL
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "safety margin") {
		t.Fatalf("margin ≥ TTL accepted: %v", err)
	}
}

// FuzzParseLease feeds arbitrary documents (JSON objects whose numbers are
// turned into Firestore integers or doubles) to the parser and the rules:
// no panic, and an unreadable document is never taken before its grace nor
// renewed as our own.
func FuzzParseLease(f *testing.F) {
	f.Add([]byte(`{"holderInstanceId":"node-1","leaseUntil":1790000000000}`), false)
	f.Add([]byte(`{"holderInstanceId":"a","leaseUntil":1.5e12,"epoch":3,"holderSession":"s-me","holderHost":"h1","holderPid":7,"holderDataDir":"/data"}`), true)
	f.Add([]byte(`{"holderInstanceId":7,"leaseUntil":"soon","epoch":"x"}`), false)
	f.Add([]byte(`{"leaseUntil":1e300,"holderPid":-1,"holderSession":""}`), true)
	f.Add([]byte(`{"holderInstanceId":"a","leaseUntil":null,"holderStartedAt":true}`), false)
	f.Fuzz(func(t *testing.T, raw []byte, asFloat bool) {
		var m map[string]any
		if json.Unmarshal(raw, &m) != nil {
			return
		}
		for k, v := range m {
			switch n := v.(type) {
			case float64:
				if !asFloat && n == math.Trunc(n) && math.Abs(n) < 1<<62 {
					m[k] = int64(n)
				}
			case string:
				if k == fStartedAt && n == "ts" {
					m[k] = t0
				}
			}
		}
		l := parseLease(m)
		me := self{InstanceID: "a", Host: "h1", DataDir: "/data", Session: "s-me", SameHost: true}
		update := t0.Add(-time.Second)
		v := decide(me, true, m, t0, update, fastT)
		if len(l.Problems) > 0 {
			if v.Status != Unknown {
				t.Fatalf("unreadable document (%v) has status %s", l.Problems, v.Status)
			}
			if v.Act == actRenew {
				t.Fatalf("unreadable document renewed as ours: %v", l.Problems)
			}
		}
		if !l.CoreOK && v.Act != actWait {
			t.Fatalf("document without readable expiry taken %s before grace: %v", v.Act, m)
		}
		if l.CoreOK && v.Act == actTakeOver && t0.UnixMilli() < l.LeaseUntil {
			if !(l.Wactl && sameInstance(l.Holder.InstanceID, "a") && l.Holder.Host == "h1" && l.Holder.DataDir == "/data") {
				t.Fatalf("live lease of another process taken over: %v", m)
			}
		}
		if v.Act == actTakeOver && v.Epoch <= l.Epoch {
			t.Fatalf("epoch went from %d to %d", l.Epoch, v.Epoch)
		}
	})
}

// TestStaleWactlFieldsNameNobody: holder details of a document whose
// binding does not match are not reported (issue 15.1: /ready said "held by
// node-old-1 (host vm, pid …)" with the pid of an earlier wactl).
func TestStaleWactlFieldsNameNobody(t *testing.T) {
	ms := t0.UnixMilli()
	l := parseLease(nodeMerge(wactlDoc("wactl-vm", "vm", "s-old", 7, ms-60000), "node-old-1", ms+90000))
	if l.Wactl || !l.Stale || l.Holder != (Holder{InstanceID: "node-old-1"}) || len(l.Problems) != 0 || l.Epoch != 7 {
		t.Fatalf("parsed %+v", l)
	}
	v := decide(self{InstanceID: "wactl-vm", Host: "vm", Session: "s"}, true, nodeMerge(wactlDoc("wactl-vm", "vm", "s-old", 7, ms-60000), "node-old-1", ms+90000), t0, t0, fastT)
	if strings.Contains(v.Reason, "pid") || strings.Contains(v.Reason, "host") {
		t.Fatalf("reason names a wactl process: %q", v.Reason)
	}
	if ok := parseLease(wactlDoc("a", "h", "s", 3, ms)); !ok.Wactl || ok.Holder.PID != 1234 {
		t.Fatalf("valid binding not recognised: %+v", ok)
	}
}
