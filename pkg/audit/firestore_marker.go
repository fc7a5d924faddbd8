package audit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A Firestore commit takes at most 500 writes; each mark is two (the
// message and its journal entry), committed together, plus the run's
// heartbeat once per batch.
const fsMarksPerBatch = 249

// Journal: cleanup_runs/{runId} with subcollections marks/{sha1(path)[:24]}
// and threads/{sha1(threadId)[:24]} holding what each write replaced.

func (f *Firestore) run(runID string) *firestore.DocumentRef {
	return f.c.Collection(colRuns).Doc(runID)
}

func journalID(s string) string { return sha1Hex(s)[:24] }

func (f *Firestore) BeginRun(ctx context.Context, r RunInfo) error {
	host, pid := runOwner()
	_, err := f.run(r.ID).Create(ctx, map[string]any{
		"runId":       r.ID,
		"status":      "running",
		"startedAt":   r.StartedAt,
		"selection":   selectionMap(r.Selection),
		"host":        host,
		"pid":         pid,
		"heartbeatAt": r.StartedAt,
	})
	if err != nil {
		return fmt.Errorf("record cleanup run %s: %w", r.ID, err)
	}
	return nil
}

func selectionMap(s Selection) map[string]any {
	return map[string]any{
		"window": s.Window.String(), "limit": s.Limit, "accountId": s.AccountID,
		"threadId": s.ThreadID, "key": string(s.Key), "now": s.Now,
	}
}

func (f *Firestore) FinishRun(ctx context.Context, runID string, marked, threads int) error {
	_, err := f.run(runID).Update(ctx, []firestore.Update{
		{Path: "status", Value: "done"},
		{Path: "finishedAt", Value: time.Now().UTC()},
		{Path: "marked", Value: marked},
		{Path: "threadsUpdated", Value: threads},
	})
	return err
}

func (f *Firestore) msgRef(threadID, docID string) *firestore.DocumentRef {
	return f.c.Collection(colThreads).Doc(threadID).Collection(colMessages).Doc(docID)
}

// Mark commits marks 249 at a time, each with its journal entry. A crash
// between commits leaves whole batches marked and journaled; the rerun
// reads them as already marked.
//
// Each batch first reads its documents and their canonical copies, and
// writes a mark only under a LastUpdateTime precondition on what it read,
// and only when the document's mark fields are still what the plan saw and
// its canonical copy is still live. A document the daemon (or anyone)
// marked or changed that way after the plan is left alone and counted:
// Mark then returns ErrChangedSincePlan with the rest written, and the
// caller plans those documents again. A write racing the commit fails the
// precondition and the batch is read and decided again. Deleted documents
// are skipped.
func (f *Firestore) Mark(ctx context.Context, runID string, at time.Time, marks []Mark, progress func(int)) (int, error) {
	done, changed := 0, 0
	for chunk := range slices.Chunk(marks, fsMarksPerBatch) {
		n, c, err := f.markChunk(ctx, runID, at, chunk, 0)
		done += n
		changed += c
		if err != nil {
			return done, fmt.Errorf("mark duplicates (after %d marked; rerun to finish): %w", done, err)
		}
		if progress != nil {
			progress(done)
		}
	}
	if changed > 0 {
		return done, changedSincePlan(changed)
	}
	return done, nil
}

// markChunk writes one batch; depth counts splits after repeated races.
func (f *Firestore) markChunk(ctx context.Context, runID string, at time.Time, marks []Mark, depth int) (done, changed int, err error) {
	backoff := 10 * time.Millisecond
	for attempt := 0; ; attempt++ {
		refs := make([]*firestore.DocumentRef, 0, 2*len(marks))
		for _, m := range marks {
			ct := m.CanonicalThreadID
			if ct == "" {
				ct = m.ThreadID
			}
			refs = append(refs, f.msgRef(m.ThreadID, m.DocID), f.msgRef(ct, m.DuplicateOf))
		}
		snaps, err := f.c.GetAll(ctx, refs)
		if err != nil {
			return 0, 0, err
		}
		b := f.c.Batch()
		n, c := 0, 0
		for i, m := range marks {
			s, can := snaps[2*i], snaps[2*i+1]
			if !s.Exists() {
				continue // deleted since the scan
			}
			if !sameMarks(s.Data(), m.Prev) || !can.Exists() || fsBool(can.Data(), "isDuplicate") {
				c++
				continue
			}
			b.Update(s.Ref, []firestore.Update{
				{Path: "isDuplicate", Value: true},
				{Path: "duplicateOf", Value: m.DuplicateOf},
				{Path: "duplicateMarkedAt", Value: at},
				{Path: "cleanupRunId", Value: runID},
			}, firestore.LastUpdateTime(s.UpdateTime))
			prev := m.Prev
			if prev == nil {
				prev = map[string]any{}
			}
			b.Set(f.run(runID).Collection("marks").Doc(journalID(s.Ref.Path)), map[string]any{
				"threadId": m.ThreadID, "docId": m.DocID, "duplicateOf": m.DuplicateOf,
				"markedAt": at, "prev": prev,
			})
			n++
		}
		if n == 0 {
			return 0, c, nil
		}
		b.Update(f.run(runID), []firestore.Update{{Path: "heartbeatAt", Value: time.Now().UTC()}})
		_, err = b.Commit(ctx)
		if err == nil {
			return n, c, nil
		}
		if !raced(err) {
			return 0, 0, err
		}
		// A document was written between the read and the commit (a
		// receipt, the daemon's own mark): read and decide again. A batch
		// that keeps losing to live writes is split, so one busy document
		// cannot hold back the others.
		if attempt >= 2 && len(marks) > 1 && depth < 12 {
			h := len(marks) / 2
			d1, c1, err := f.markChunk(ctx, runID, at, marks[:h], depth+1)
			if err != nil {
				return d1, c1, err
			}
			d2, c2, err := f.markChunk(ctx, runID, at, marks[h:], depth+1)
			return d1 + d2, c1 + c2, err
		}
		if attempt >= 20 {
			return 0, 0, fmt.Errorf("documents kept changing while being marked: %w", err)
		}
		select {
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 500*time.Millisecond)
	}
}

// raced says a conditional write lost to another writer.
func raced(err error) bool {
	switch status.Code(err) {
	case codes.FailedPrecondition, codes.Aborted, codes.NotFound:
		return true
	}
	return false
}

func fsBool(m map[string]any, k string) bool { b, _ := m[k].(bool); return b }

// sameMarks reports whether the document's mark fields are the ones the
// plan saw (prev: the fields it had).
func sameMarks(cur, prev map[string]any) bool {
	for _, k := range markFields {
		a, aok := cur[k]
		b, bok := prev[k]
		if aok != bok {
			return false
		}
		if ta, ok := a.(time.Time); ok {
			if tb, ok := b.(time.Time); !ok || !ta.Equal(tb) {
				return false
			}
			continue
		}
		if a != b {
			return false
		}
	}
	return true
}

// RecomputeThread reads the thread and its newest messages without a
// transaction and writes the new summary under a LastUpdateTime
// precondition on the thread it read, retrying after a conflict. A
// message the daemon records meanwhile updates the thread document in the
// same commit, so it makes the write fail and the decision is made again
// with it; the daemon's writes never wait for a lock held by cleanup (a
// transaction's reads lock the documents on the emulator, and against 4
// live writers 1 recompute in 10 failed with "Transaction lock timeout").
//
// The summary moves to the newest non-duplicate message. It may move back
// in time only when a duplicate at or after the summary's time explains
// it (the summary showed a copy that is now marked). If the summary is
// newer than every message the run can see, it was written for a message
// this run does not know about, and it is left alone: cleanup never moves
// a thread back past a live message.
func (f *Firestore) RecomputeThread(ctx context.Context, runID, threadID string) (ThreadChange, error) {
	tref := f.c.Collection(colThreads).Doc(threadID)
	backoff := 10 * time.Millisecond
	for attempt := 0; ; attempt++ {
		ch, err := f.tryRecomputeThread(ctx, runID, tref)
		if err == nil {
			return ch, nil
		}
		if !raced(err) || attempt >= 50 {
			return ThreadChange{}, fmt.Errorf("recompute thread %s: %w", threadID, err)
		}
		select {
		case <-ctx.Done():
			return ThreadChange{}, fmt.Errorf("recompute thread %s: %w", threadID, ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 500*time.Millisecond)
	}
}

func (f *Firestore) tryRecomputeThread(ctx context.Context, runID string, tref *firestore.DocumentRef) (ThreadChange, error) {
	var ch ThreadChange
	tsnap, err := tref.Get(ctx)
	if status.Code(err) == codes.NotFound {
		ch.Kept = "thread document missing"
		return ch, nil
	}
	if err != nil {
		return ch, err
	}
	cur := tsnap.Data()
	curMs, ok := fsInt(cur, "lastMessageAtMs")
	if !ok {
		if t, ok := fsTime(cur, "lastMessageAt"); ok {
			curMs = t.UnixMilli()
		}
	}
	it := tref.Collection(colMessages).OrderBy("tsClient", firestore.Desc).Limit(200).Documents(ctx)
	defer it.Stop()
	var newest map[string]any
	var newestTs time.Time
	dupAtOrAfter := false
	for {
		s, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return ch, err
		}
		m := s.Data()
		ts, ok := m["tsClient"].(time.Time)
		if !ok {
			continue
		}
		if dup, _ := m["isDuplicate"].(bool); dup {
			if ts.UnixMilli() >= curMs {
				dupAtOrAfter = true
			}
			continue
		}
		newest, newestTs = m, ts.UTC()
		break
	}
	if newest == nil {
		ch.Kept = "no non-duplicate message found"
		return ch, nil
	}
	nMs := newestTs.UnixMilli()
	text := fsString(newest, "body")
	if nMs == curMs && text == fsString(cur, "lastMessageText") {
		return ch, nil
	}
	if nMs < curMs && !dupAtOrAfter {
		ch.Kept = "summary is newer than every message seen (live write)"
		return ch, nil
	}
	prev := map[string]any{}
	for _, k := range []string{"lastMessageAt", "lastMessageAtMs", "lastMessageText"} {
		if v, ok := cur[k]; ok {
			prev[k] = v
		}
	}
	next := map[string]any{"lastMessageAt": newestTs, "lastMessageAtMs": nMs, "lastMessageText": text}
	b := f.c.Batch()
	b.Update(tref, []firestore.Update{
		{Path: "lastMessageAt", Value: newestTs},
		{Path: "lastMessageAtMs", Value: nMs},
		{Path: "lastMessageText", Value: text},
	}, firestore.LastUpdateTime(tsnap.UpdateTime))
	b.Set(f.run(runID).Collection("threads").Doc(journalID(tref.ID)), map[string]any{
		"threadId": tref.ID, "prev": prev, "next": next,
	})
	if _, err := b.Commit(ctx); err != nil {
		return ch, err
	}
	ch.Updated = true
	return ch, nil
}

// Undo restores every document the run marked to its journaled state,
// unless it no longer carries this run's mark, and every thread summary the
// run changed, unless a newer message moved it on since.
func (f *Firestore) Undo(ctx context.Context, runID string) (UndoResult, error) {
	var res UndoResult
	rsnap, err := f.run(runID).Get(ctx)
	if status.Code(err) == codes.NotFound {
		return res, fmt.Errorf("no cleanup run %q in %s: check the run id printed by `wactl cleanup --apply`", runID, colRuns)
	}
	if err != nil {
		return res, err
	}
	_ = rsnap
	journal, err := f.run(runID).Collection("marks").Documents(ctx).GetAll()
	if err != nil {
		return res, fmt.Errorf("read the journal of run %s: %w", runID, err)
	}
	for chunk := range slices.Chunk(journal, fsMarksPerBatch) {
		refs := make([]*firestore.DocumentRef, len(chunk))
		for i, j := range chunk {
			d := j.Data()
			refs[i] = f.msgRef(fsString(d, "threadId"), fsString(d, "docId"))
		}
		snaps, err := f.c.GetAll(ctx, refs)
		if err != nil {
			return res, err
		}
		b := f.c.Batch()
		n := 0
		for i, s := range snaps {
			if !s.Exists() || fsString(s.Data(), "cleanupRunId") != runID {
				res.Skipped++
				continue
			}
			prev, _ := chunk[i].Data()["prev"].(map[string]any)
			var ups []firestore.Update
			for _, k := range markFields {
				if v, ok := prev[k]; ok {
					ups = append(ups, firestore.Update{Path: k, Value: v})
				} else {
					ups = append(ups, firestore.Update{Path: k, Value: firestore.Delete})
				}
			}
			b.Update(refs[i], ups)
			n++
		}
		if n > 0 {
			if _, err := b.Commit(ctx); err != nil {
				return res, fmt.Errorf("undo run %s (after %d restored; rerun to finish): %w", runID, res.Unmarked, err)
			}
		}
		res.Unmarked += n
	}
	threads, err := f.run(runID).Collection("threads").Documents(ctx).GetAll()
	if err != nil {
		return res, err
	}
	for _, j := range threads {
		jd := j.Data()
		tref := f.c.Collection(colThreads).Doc(fsString(jd, "threadId"))
		prev, _ := jd["prev"].(map[string]any)
		next, _ := jd["next"].(map[string]any)
		restored, err := f.restoreThread(ctx, tref, prev, next)
		if err != nil {
			return res, fmt.Errorf("restore thread %s: %w", tref.ID, err)
		}
		if restored {
			res.ThreadsRestored++
		} else {
			res.ThreadsKept++
		}
	}
	_, err = f.run(runID).Update(ctx, []firestore.Update{
		{Path: "status", Value: "undone"}, {Path: "undoneAt", Value: time.Now().UTC()},
	})
	return res, err
}

// restoreThread puts a summary the run changed back, unless a newer
// message moved it on since: read, then a write conditional on what was
// read, again after a conflict (no transaction: the daemon never waits).
func (f *Firestore) restoreThread(ctx context.Context, tref *firestore.DocumentRef, prev, next map[string]any) (bool, error) {
	backoff := 10 * time.Millisecond
	for attempt := 0; ; attempt++ {
		s, err := tref.Get(ctx)
		if err != nil {
			return false, err
		}
		cur := s.Data()
		cm, _ := fsInt(cur, "lastMessageAtMs")
		nm, _ := fsInt(next, "lastMessageAtMs")
		if cm != nm || fsString(cur, "lastMessageText") != fsString(next, "lastMessageText") {
			return false, nil
		}
		var ups []firestore.Update
		for _, k := range []string{"lastMessageAt", "lastMessageAtMs", "lastMessageText"} {
			if v, ok := prev[k]; ok {
				ups = append(ups, firestore.Update{Path: k, Value: v})
			} else {
				ups = append(ups, firestore.Update{Path: k, Value: firestore.Delete})
			}
		}
		_, err = tref.Update(ctx, ups, firestore.LastUpdateTime(s.UpdateTime))
		if err == nil {
			return true, nil
		}
		if !raced(err) || attempt >= 50 {
			return false, err
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 500*time.Millisecond)
	}
}

// Runs lists the cleanup runs, newest first. A run recorded as running
// whose process is gone is reported (and recorded) as interrupted.
func (f *Firestore) Runs(ctx context.Context) ([]RunRecord, error) {
	docs, err := f.c.Collection(colRuns).Documents(ctx).GetAll()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", colRuns, err)
	}
	now := time.Now()
	var out []RunRecord
	for _, d := range docs {
		m := d.Data()
		r := RunRecord{ID: d.Ref.ID, Status: fsString(m, "status"), Host: fsString(m, "host")}
		r.StartedAt, _ = fsTime(m, "startedAt")
		r.FinishedAt, _ = fsTime(m, "finishedAt")
		r.HeartbeatAt, _ = fsTime(m, "heartbeatAt")
		pid, _ := fsInt(m, "pid")
		r.PID = int(pid)
		if r.interrupted(now) {
			r.Status = "interrupted"
			// Conditional on the "running" document read: a run that
			// resumed meanwhile is not relabelled.
			_, _ = d.Ref.Update(ctx, []firestore.Update{{Path: "status", Value: "interrupted"}}, firestore.LastUpdateTime(d.UpdateTime))
		}
		cnt, err := d.Ref.Collection("marks").NewAggregationQuery().WithCount("n").Get(ctx)
		if err != nil {
			return nil, fmt.Errorf("count the marks of run %s: %w", r.ID, err)
		}
		if v, ok := cnt["n"].(interface{ GetIntegerValue() int64 }); ok {
			r.Marks = int(v.GetIntegerValue())
		}
		out = append(out, r)
	}
	sortRuns(out)
	return out, nil
}
