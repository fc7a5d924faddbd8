package daemon

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/wactl/wactl/pkg/replica"
	"github.com/wactl/wactl/pkg/sessions"
	"github.com/wactl/wactl/pkg/store"
)

// ReplicaOptions turns on the Firestore session replica (issue 20).
type ReplicaOptions struct {
	Client *firestore.Client
	Key    *replica.Key
	// Interval bounds how often a changed account is written (default 60 s).
	Interval time.Duration
	// Poll is how often the cheap change check runs (default min(Interval, 2 s)):
	// a newly paired account is written on the next poll.
	Poll time.Duration
	// RestoreTimeout bounds the restore a newly ACTIVE process runs before
	// connecting (default 15 s).
	RestoreTimeout time.Duration
}

// replicaSync keeps each account's copy current while this process is
// ACTIVE. Change detection is cheap: the account directory's file times
// first, then the snapshot digest, so an idle account writes nothing.
type replicaSync struct {
	r    *replica.Replica
	o    ReplicaOptions
	sess *sessions.Store
	log  *slog.Logger
	now  func() time.Time

	mu    sync.Mutex // one pass at a time (the loop, the final copy)
	state map[string]*replicaState

	// problems: accounts whose copy was refused or cannot be written, for
	// /health, the dashboard and the log (replica_status.go).
	pmu      sync.Mutex
	problems map[string]ReplicaProblem

	// The restore in flight after gaining the lease (Daemon.mu guards them).
	pending     context.CancelFunc
	pendingDone chan struct{}
}

type replicaState struct {
	mtime   time.Time // of the files the last export saw
	digest  string    // of the copy in Firestore ("" unknown)
	written time.Time // last write
	present bool      // a copy exists (or may)
}

func newReplicaSync(o ReplicaOptions, sess *sessions.Store, log *slog.Logger, now func() time.Time, instance string, fence func() (int64, bool)) *replicaSync {
	if o.Interval <= 0 {
		o.Interval = 60 * time.Second
	}
	if o.Poll <= 0 {
		o.Poll = min(o.Interval, 2*time.Second)
	}
	if o.RestoreTimeout <= 0 {
		o.RestoreTimeout = 15 * time.Second
	}
	return &replicaSync{
		r: replica.New(replica.Options{Client: o.Client, Key: o.Key, Fence: fence, Instance: instance, Now: now}),
		o: o, sess: sess, log: log.With("component", "replica"), now: now,
		state: map[string]*replicaState{}, problems: map[string]ReplicaProblem{},
	}
}

// restore runs when the lease is gained, before any account connects: each
// account with a copy is restored when the local session is missing,
// unpaired or older. A copy it cannot read is logged loudly and the local
// session (if any) is left alone.
func (s *replicaSync) restore(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, s.o.RestoreTimeout)
	defer cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.state)
	start := time.Now()
	ids, err := s.r.List(ctx)
	if err != nil {
		s.log.Error("cannot list the session replica; accounts start from the local disk only", "err", err)
		return
	}
	counts := map[string]int{}
	for _, id := range ids {
		if s.removedHere(ctx, id) {
			counts["removed-here"]++
			continue
		}
		res := s.r.RestoreAccount(ctx, s.sess, id)
		counts[res.Outcome]++
		switch res.Outcome {
		case replica.Restored, replica.Replaced, replica.Unchanged:
			s.state[id] = &replicaState{present: true, digest: res.Digest, mtime: accountMtime(s.sess.Dir(id)), written: s.now()}
		case replica.KeptLocal, replica.NotPaired, replica.UnpairedHere:
			s.state[id] = &replicaState{present: true} // written (or deleted) on the next pass
		}
		s.noteRestore(id, res)
		// Refused, failed or in-use copies are not tracked: an account not
		// on this disk is never taken for "removed", so a host with the
		// wrong key cannot delete the good copies of the others.
		switch res.Outcome {
		case replica.Restored, replica.Replaced:
			s.log.Info("session restored from the replica", "account", id, "outcome", res.Outcome, "generation", res.Generation)
		case replica.UnpairedHere:
			s.log.Info("session replica not restored: the account was logged out or reset here after this copy; the copy is deleted", "account", id, "generation", res.Generation)
		case replica.Refused, replica.Failed, replica.InUse:
			s.log.Error("session replica not restored; the local session (if any) is untouched", "account", id, "outcome", res.Outcome, "err", res.Err)
			if errors.Is(res.Err, replica.ErrDamagedPointer) {
				s.log.Error("replica: the pointer document is damaged; this host rewrites it at its next copy of the account (a local session is needed), or run: wactl doctor --fix",
					"account", id, "doc", replica.Collection+"/"+id)
			}
		}
	}
	s.log.Info("session replica read", "accounts", len(ids), "outcomes", counts, "took", time.Since(start).Round(time.Millisecond))
}

// removedHere: the operator removed the account on this host (`wactl
// accounts remove`, with or without --purge, while no daemon ran, and
// Firestore's copy could not be deleted then): restoring the copy would
// undo the removal, so it is deleted instead — unless the copy is both of
// a later generation than the removed session and written after the
// removal (the account was paired again elsewhere since).
func (s *replicaSync) removedHere(ctx context.Context, id string) bool {
	if _, err := os.Stat(s.sess.Dir(id)); err == nil {
		return false
	}
	rm, ok := replica.LastRemoval(s.sess.Root(), id)
	if !ok {
		return false
	}
	in, err := s.r.Stat(ctx, id)
	if err != nil || !rm.CoveredBy(in) {
		return false
	}
	at := rm.At
	if err := s.r.Delete(ctx, id); err != nil {
		s.log.Warn("replica: the account was removed on this host; its copy could not be deleted", "account", id, "err", err)
	} else {
		s.log.Info("replica: the account was removed on this host after its copy was taken; copy deleted, not restored", "account", id, "removed_at", at)
	}
	return true
}

// accountMtime is the latest modification time of an account's state
// files (whatsmeow's database, its WAL, account.json): unchanged times mean
// an unchanged session, so an idle account costs three stat calls a poll.
func accountMtime(dir string) time.Time {
	var latest time.Time
	for _, name := range []string{"whatsmeow.db", "whatsmeow.db-wal", "account.json"} {
		if st, err := os.Stat(filepath.Join(dir, name)); err == nil && st.ModTime().After(latest) {
			latest = st.ModTime()
		}
	}
	return latest
}

// loop polls while ctx lives; it writes only while the lease is held.
func (s *replicaSync) loop(ctx context.Context, active func() bool) {
	t := time.NewTicker(s.o.Poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if active() {
			s.pass(ctx, false)
		}
	}
}

// pass writes every account whose state changed since its last copy, at
// most every Interval (force: now, for the final copy at shutdown), and
// deletes the copy of an account that was logged out, reset or removed.
func (s *replicaSync) pass(ctx context.Context, force bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids, err := s.sess.SnapshotAccountIDs(ctx)
	if err != nil {
		s.log.Warn("replica: cannot list accounts", "err", err)
		return
	}
	now := s.now()
	for _, id := range ids {
		if ctx.Err() != nil {
			return
		}
		st := s.state[id]
		if st == nil {
			st = &replicaState{present: true} // unknown: a copy may exist
			s.state[id] = st
		}
		mt := accountMtime(s.sess.Dir(id))
		if !mt.IsZero() && mt.Equal(st.mtime) {
			continue
		}
		if !force && st.digest != "" && now.Sub(st.written) < s.o.Interval {
			// Changed, but written recently: the next poll after Interval
			// takes it — unless the change is a logout or reset
			// (account.json lost its device), whose copy goes at once.
			if m, err := s.sess.Get(id); err != nil || m.PairedJID != "" {
				continue
			}
		}
		snap, err := s.sess.ExportAccount(ctx, id)
		if err != nil {
			s.log.Warn("replica: cannot read the session", "account", id, "err", err)
			continue
		}
		// account.json is unpaired only after a logout or reset
		// (MarkUnpaired); whatsmeow may still hold the device row when its
		// own deletion was interrupted, and that row must not be copied.
		if !snap.Paired() || snap.Metadata != nil && snap.Metadata.PairedJID == "" {
			// Logged out or reset: a copy would bring the session back.
			if st.present {
				if err := s.r.Delete(ctx, id); err != nil {
					s.log.Warn("replica: cannot delete the copy of a logged-out account", "account", id, "err", err)
					continue
				}
				s.log.Info("replica: copy deleted (the account is no longer paired)", "account", id)
			}
			st.present, st.digest, st.mtime = false, "", mt
			continue
		}
		if snap.Digest == st.digest {
			st.mtime = mt
			continue
		}
		t0 := time.Now()
		res, err := s.r.Put(ctx, snap)
		if err != nil {
			lvl := slog.LevelWarn
			if errors.Is(err, store.ErrFenced) {
				lvl = slog.LevelInfo
			} else {
				s.notePutFailed(id, err)
			}
			s.log.Log(ctx, lvl, "replica: copy not written", "account", id, "err", err)
			continue
		}
		if res.Repaired != nil {
			s.log.Warn("replica: the pointer document was damaged; rewritten with this copy", "account", id,
				"generation", res.Generation, "was", res.Repaired)
		}
		if err := replica.WriteLocalGeneration(s.sess.Dir(id), id, res.Generation, s.now()); err != nil {
			s.log.Warn("replica: copy written, but its generation could not be recorded beside the session", "account", id, "err", err)
		}
		s.noteWritten(id)
		st.mtime, st.digest, st.written, st.present = mt, snap.Digest, now, true
		s.log.Info("replica: copy written", "account", id, "generation", res.Generation, "bytes", res.Bytes,
			"took", time.Since(t0).Round(time.Millisecond))
	}
	// Accounts gone from disk (deleted through the API, accounts remove).
	for id, st := range s.state {
		if slices.Contains(ids, id) || !st.present {
			continue
		}
		if err := s.r.Delete(ctx, id); err != nil {
			s.log.Warn("replica: cannot delete the copy of a removed account", "account", id, "err", err)
			continue
		}
		s.log.Info("replica: copy deleted (the account was removed)", "account", id)
		delete(s.state, id)
	}
}

// The daemon's hooks (daemon.go): restore before Activate, the loop while
// running, the final copy at shutdown.

func (d *Daemon) startReplica(ctx context.Context) {
	if d.o.Replica == nil {
		return
	}
	d.replica = newReplicaSync(*d.o.Replica, d.o.Sessions, d.log, d.o.Now, d.o.InstanceID, d.lk.Fence)
	go d.replica.loop(ctx, func() bool { _, ok := d.lk.Fence(); return ok && d.mgr.Active() })
}

// activate is OnActive. Without the replica it activates at once. With it,
// the restore runs in the background — the lease goroutine that calls
// OnActive must keep renewing — and the manager is activated only if the
// same epoch is still held when it ends; cancelRestore (OnPassive) cancels
// and waits for it first, so nothing activates after a step-down.
func (d *Daemon) activate(ctx context.Context, epoch int64) {
	if d.replica == nil {
		d.mgr.Activate(ctx)
		return
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	d.mu.Lock()
	d.replica.pending, d.replica.pendingDone = cancel, done
	d.mu.Unlock()
	go func() {
		defer close(done)
		defer cancel()
		d.replica.restore(rctx)
		if held, ok := d.lk.Fence(); ok && held == epoch && rctx.Err() == nil {
			d.mgr.Activate(ctx)
		}
	}()
}

// cancelRestore stops a restore still running and waits for it.
func (d *Daemon) cancelRestore() {
	if d.replica == nil {
		return
	}
	d.mu.Lock()
	cancel, done := d.replica.pending, d.replica.pendingDone
	d.replica.pending, d.replica.pendingDone = nil, nil
	d.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// finalReplica, at shutdown while the lease is still held: disconnect every
// client first (so the state stops changing), then write each changed
// account now, so that the next holder restores exactly this state. The
// lease's own step-down then finds nothing connected.
func (d *Daemon) finalReplica(deadline time.Time) {
	if d.replica == nil {
		return
	}
	if _, ok := d.lk.Fence(); !ok {
		return
	}
	d.mgr.Deactivate("shutdown")
	ctx, cancel := context.WithDeadline(context.Background(), deadline.Add(-time.Until(deadline)/2))
	defer cancel()
	t0 := time.Now()
	d.replica.pass(ctx, true)
	d.log.Info("replica: final copy before releasing the lease", "took", time.Since(t0).Round(time.Millisecond))
}
