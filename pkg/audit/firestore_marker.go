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
// message and its journal entry), committed together.
const fsMarksPerBatch = 250

// Journal: cleanup_runs/{runId} with subcollections marks/{sha1(path)[:24]}
// and threads/{sha1(threadId)[:24]} holding what each write replaced.

func (f *Firestore) run(runID string) *firestore.DocumentRef {
	return f.c.Collection(colRuns).Doc(runID)
}

func journalID(s string) string { return sha1Hex(s)[:24] }

func (f *Firestore) BeginRun(ctx context.Context, r RunInfo) error {
	_, err := f.run(r.ID).Create(ctx, map[string]any{
		"runId":     r.ID,
		"status":    "running",
		"startedAt": r.StartedAt,
		"selection": selectionMap(r.Selection),
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

// Mark commits marks 250 at a time, each with its journal entry. A crash
// between commits leaves whole batches marked and journaled; the rerun
// reads them as already marked. A document deleted since the scan fails
// its batch (Update requires existence); the batch is then retried one
// document at a time and the missing ones are skipped.
func (f *Firestore) Mark(ctx context.Context, runID string, at time.Time, marks []Mark, progress func(int)) (int, error) {
	done := 0
	for chunk := range slices.Chunk(marks, fsMarksPerBatch) {
		err := f.commitMarks(ctx, runID, at, chunk)
		if status.Code(err) == codes.NotFound {
			for _, m := range chunk {
				if err := f.commitMarks(ctx, runID, at, []Mark{m}); err != nil {
					if status.Code(err) == codes.NotFound {
						continue
					}
					return done, err
				}
				done++
			}
		} else if err != nil {
			return done, fmt.Errorf("mark duplicates (after %d marked; rerun to finish): %w", done, err)
		} else {
			done += len(chunk)
		}
		if progress != nil {
			progress(done)
		}
	}
	return done, nil
}

func (f *Firestore) commitMarks(ctx context.Context, runID string, at time.Time, marks []Mark) error {
	b := f.c.Batch()
	for _, m := range marks {
		ref := f.msgRef(m.ThreadID, m.DocID)
		b.Update(ref, []firestore.Update{
			{Path: "isDuplicate", Value: true},
			{Path: "duplicateOf", Value: m.DuplicateOf},
			{Path: "duplicateMarkedAt", Value: at},
			{Path: "cleanupRunId", Value: runID},
		})
		prev := m.Prev
		if prev == nil {
			prev = map[string]any{}
		}
		b.Set(f.run(runID).Collection("marks").Doc(journalID(ref.Path)), map[string]any{
			"threadId": m.ThreadID, "docId": m.DocID, "duplicateOf": m.DuplicateOf,
			"markedAt": at, "prev": prev,
		})
	}
	_, err := b.Commit(ctx)
	return err
}

// RecomputeThread runs in a transaction that reads the thread and its
// newest messages, so a message the daemon records meanwhile (which
// updates the thread document in the same commit) makes it retry rather
// than be overwritten.
//
// The summary moves to the newest non-duplicate message. It may move back
// in time only when a duplicate at or after the summary's time explains
// it (the summary showed a copy that is now marked). If the summary is
// newer than every message the transaction can see, it was written for a
// message this run does not know about, and it is left alone: cleanup
// never moves a thread back past a live message.
func (f *Firestore) RecomputeThread(ctx context.Context, runID, threadID string) (ThreadChange, error) {
	var ch ThreadChange
	tref := f.c.Collection(colThreads).Doc(threadID)
	err := f.c.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		ch = ThreadChange{}
		tsnap, err := tx.Get(tref)
		if status.Code(err) == codes.NotFound {
			ch.Kept = "thread document missing"
			return nil
		}
		if err != nil {
			return err
		}
		cur := tsnap.Data()
		curMs, ok := fsInt(cur, "lastMessageAtMs")
		if !ok {
			if t, ok := fsTime(cur, "lastMessageAt"); ok {
				curMs = t.UnixMilli()
			}
		}
		q := tref.Collection(colMessages).OrderBy("tsClient", firestore.Desc).Limit(200)
		it := tx.Documents(q)
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
				return err
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
			return nil
		}
		nMs := newestTs.UnixMilli()
		text := fsString(newest, "body")
		if nMs == curMs && text == fsString(cur, "lastMessageText") {
			return nil
		}
		if nMs < curMs && !dupAtOrAfter {
			ch.Kept = "summary is newer than every message seen (live write)"
			return nil
		}
		prev := map[string]any{}
		for _, k := range []string{"lastMessageAt", "lastMessageAtMs", "lastMessageText"} {
			if v, ok := cur[k]; ok {
				prev[k] = v
			}
		}
		next := map[string]any{"lastMessageAt": newestTs, "lastMessageAtMs": nMs, "lastMessageText": text}
		if err := tx.Update(tref, []firestore.Update{
			{Path: "lastMessageAt", Value: newestTs},
			{Path: "lastMessageAtMs", Value: nMs},
			{Path: "lastMessageText", Value: text},
		}); err != nil {
			return err
		}
		ch.Updated = true
		return tx.Set(f.run(runID).Collection("threads").Doc(journalID(threadID)), map[string]any{
			"threadId": threadID, "prev": prev, "next": next,
		})
	})
	if err != nil {
		return ThreadChange{}, fmt.Errorf("recompute thread %s: %w", threadID, err)
	}
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
		restored := false
		err := f.c.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
			restored = false
			s, err := tx.Get(tref)
			if err != nil {
				return err
			}
			cur := s.Data()
			cm, _ := fsInt(cur, "lastMessageAtMs")
			nm, _ := fsInt(next, "lastMessageAtMs")
			if cm != nm || fsString(cur, "lastMessageText") != fsString(next, "lastMessageText") {
				return nil
			}
			var ups []firestore.Update
			for _, k := range []string{"lastMessageAt", "lastMessageAtMs", "lastMessageText"} {
				if v, ok := prev[k]; ok {
					ups = append(ups, firestore.Update{Path: k, Value: v})
				} else {
					ups = append(ups, firestore.Update{Path: k, Value: firestore.Delete})
				}
			}
			restored = true
			return tx.Update(tref, ups)
		})
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
