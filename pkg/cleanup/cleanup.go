package cleanup

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/wactl/wactl/pkg/audit"
)

// ErrDeclined is returned when Confirm says no.
var ErrDeclined = errors.New("cleanup: not confirmed; nothing was written")

// Options of a cleanup run.
type Options struct {
	Selection audit.Selection
	// Apply writes the marks; without it the run only reports (dry run).
	Apply bool
	// RunID names the run; empty generates one.
	RunID string
	// Confirm is asked, with the plan, before anything is written.
	Confirm func(*Result) (bool, error)
	// Progress is told how many marks are committed out of total.
	Progress     func(done, total int)
	SampleGroups int // groups listed in the result; 0 means 10
	Now          func() time.Time

	// afterPlan runs between planning and writing (tests record messages
	// there to race the run).
	afterPlan func()
}

// Result is the outcome, with the field names of the old cleanup script.
type Result struct {
	ScannedMessages         int           `json:"scannedMessages"`
	GroupsWithDuplicates    int           `json:"groupsWithDuplicates"`
	DuplicatesToMark        int           `json:"duplicatesToMark"`
	DuplicatesAlreadyMarked int           `json:"duplicatesAlreadyMarked"`
	Marked                  int           `json:"marked"`
	ThreadsToRecompute      int           `json:"threadsToRecompute"`
	ThreadsUpdated          int           `json:"threadsUpdated"`
	ThreadsKept             []string      `json:"threadsKept,omitempty"`
	RunID                   string        `json:"runId"`
	DryRun                  bool          `json:"dryRun"`
	SampleGroups            []SampleGroup `json:"sampleGroups"`
	Window                  string        `json:"window"`
	WindowHours             float64       `json:"windowHours"`
	Limit                   int           `json:"limit"`
	Key                     string        `json:"key"`
	ParseFailures           int           `json:"parseFailures"`
	TookMs                  int64         `json:"tookMs"`
	// Replanned counts planned marks left out because their document (or
	// its canonical copy) changed after the plan — the daemon marked it,
	// say; they were planned again from their current state.
	Replanned int `json:"replanned"`
	// InterruptedRuns are earlier runs that never finished (killed): their
	// marks stay theirs, so undoing this run leaves them; undo them by id.
	InterruptedRuns []string `json:"interruptedRuns,omitempty"`
}

// SampleGroup shows one group's decision.
type SampleGroup struct {
	ThreadID      string   `json:"threadId"`
	Size          int      `json:"size"`
	Canonical     string   `json:"canonical"`
	ToMark        []string `json:"toMark"`
	AlreadyMarked []string `json:"alreadyMarked"`
}

// NewRunID returns a sortable, unique run id.
func NewRunID(now time.Time) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return "cr-" + now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// resolveChunk bounds how many documents are read back at once.
const resolveChunk = 1000

// Run plans and, with Apply, writes one cleanup run.
func Run(ctx context.Context, b audit.Backend, o Options) (*Result, error) {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	start := now()
	if o.Selection.Now.IsZero() {
		o.Selection.Now = start
	}
	if o.Selection.Key == "" {
		o.Selection.Key = audit.KeyAuto
	}
	if o.SampleGroups <= 0 {
		o.SampleGroups = 10
	}
	g, err := audit.Collect(ctx, b, o.Selection, false)
	if err != nil {
		return nil, err
	}
	sum := audit.Summarize(g)
	res := &Result{
		ScannedMessages: g.Selected, DryRun: !o.Apply, SampleGroups: []SampleGroup{},
		Window: sum.Window, WindowHours: sum.WindowHours, Limit: sum.Limit,
		Key: string(o.Selection.Key), ParseFailures: sum.ParseFailures,
	}
	marks, threads, err := plan(ctx, b, g, res, o.SampleGroups)
	if err != nil {
		return nil, err
	}
	res.ThreadsToRecompute = len(threads)
	if !o.Apply {
		res.TookMs = now().Sub(start).Milliseconds()
		return res, nil
	}
	if o.Confirm != nil {
		ok, err := o.Confirm(res)
		if err != nil {
			return nil, err
		}
		if !ok {
			return res, ErrDeclined
		}
	}
	if o.afterPlan != nil {
		o.afterPlan()
	}
	res.RunID = o.RunID
	if res.RunID == "" {
		res.RunID = NewRunID(now())
	}
	if rl, ok := b.(RunLister); ok {
		runs, err := rl.Runs(ctx)
		if err != nil {
			return nil, err
		}
		for _, r := range runs {
			if r.Status == "interrupted" && r.Marks > 0 {
				res.InterruptedRuns = append(res.InterruptedRuns, r.ID)
			}
		}
	}
	if err := b.BeginRun(ctx, audit.RunInfo{ID: res.RunID, StartedAt: now().UTC(), Selection: o.Selection}); err != nil {
		return nil, err
	}
	total := len(marks)
	var progress func(int)
	if o.Progress != nil {
		progress = func(done int) { o.Progress(done, total) }
	}
	at := now().UTC()
	res.Marked, err = b.Mark(ctx, res.RunID, at, marks, progress)
	// Documents that changed after the plan are planned again from what
	// they are now (a fresh scan: the change may move a group's canonical
	// copy), a few times over while live writes keep changing them.
	for pass := 0; errors.Is(err, audit.ErrChangedSincePlan); pass++ {
		if pass == maxReplans {
			return res, fmt.Errorf("run %s: %w after %d plans; rerun to finish", res.RunID, err, pass+1)
		}
		var ce *audit.ChangedError
		if errors.As(err, &ce) {
			res.Replanned += ce.N
		}
		var n int
		g, cerr := audit.Collect(ctx, b, o.Selection, false)
		if cerr != nil {
			return res, fmt.Errorf("run %s: plan again: %w", res.RunID, cerr)
		}
		var again Result
		more, moreThreads, perr := plan(ctx, b, g, &again, 0)
		if perr != nil {
			return res, fmt.Errorf("run %s: plan again: %w", res.RunID, perr)
		}
		threads = mergeSorted(threads, moreThreads)
		n, err = b.Mark(ctx, res.RunID, at, more, nil)
		res.Marked += n
	}
	if err != nil {
		return res, fmt.Errorf("run %s: %w", res.RunID, err)
	}
	// Threads are recomputed after every mark is committed: a rerun after
	// a crash here has nothing left to mark but still recomputes them,
	// because threads come from every duplicate group, marked or not.
	for _, t := range threads {
		ch, err := b.RecomputeThread(ctx, res.RunID, t)
		if err != nil {
			return res, fmt.Errorf("run %s: %w (rerun to finish)", res.RunID, err)
		}
		if ch.Updated {
			res.ThreadsUpdated++
		} else if ch.Kept != "" {
			res.ThreadsKept = append(res.ThreadsKept, t+": "+ch.Kept)
		}
	}
	if err := b.FinishRun(ctx, res.RunID, res.Marked, res.ThreadsUpdated); err != nil {
		return res, err
	}
	res.TookMs = now().Sub(start).Milliseconds()
	return res, nil
}

// maxReplans bounds how often a run plans again documents that changed
// under it.
const maxReplans = 3

// RunLister is implemented by backends that list their cleanup runs.
type RunLister interface {
	Runs(ctx context.Context) ([]audit.RunRecord, error)
}

// Runs lists the cleanup runs of b, newest first, interrupted ones marked
// as such.
func Runs(ctx context.Context, b audit.Backend) ([]audit.RunRecord, error) {
	rl, ok := b.(RunLister)
	if !ok {
		return nil, fmt.Errorf("cleanup: the %s store does not list runs", b.Name())
	}
	return rl.Runs(ctx)
}

func mergeSorted(a, b []string) []string {
	out := append(slices.Clone(a), b...)
	slices.Sort(out)
	return slices.Compact(out)
}

// plan reads back every document of the duplicate groups (their current
// state), chooses each group's canonical copy and lists the marks.
func plan(ctx context.Context, src audit.Source, g *audit.Grouping, res *Result, samples int) ([]audit.Mark, []string, error) {
	var groups [][]int64
	var marks []audit.Mark
	threads := map[string]bool{}
	flush := func() error {
		var refs []int64
		for _, gr := range groups {
			refs = append(refs, gr...)
		}
		docs, err := src.Resolve(ctx, refs)
		if err != nil {
			return err
		}
		byRef := make(map[int64]audit.Doc, len(docs))
		for _, d := range docs {
			byRef[d.Ref] = d
		}
		for _, gr := range groups {
			var ds []audit.Doc
			for _, r := range gr {
				if d, ok := byRef[r]; ok {
					ds = append(ds, d)
				}
			}
			if len(ds) < 2 {
				continue
			}
			SortCanonicalFirst(ds)
			res.GroupsWithDuplicates++
			can := ds[0]
			threads[can.ThreadID] = true
			sg := SampleGroup{ThreadID: can.ThreadID, Size: len(ds), Canonical: can.ID, ToMark: []string{}, AlreadyMarked: []string{}}
			for _, d := range ds[1:] {
				threads[d.ThreadID] = true
				if d.IsDuplicate {
					res.DuplicatesAlreadyMarked++
					sg.AlreadyMarked = append(sg.AlreadyMarked, d.ID)
					continue
				}
				res.DuplicatesToMark++
				sg.ToMark = append(sg.ToMark, d.ID)
				marks = append(marks, audit.Mark{ThreadID: d.ThreadID, DocID: d.ID, DuplicateOf: can.ID,
					CanonicalThreadID: can.ThreadID, Prev: d.PrevMark})
			}
			if len(res.SampleGroups) < samples {
				res.SampleGroups = append(res.SampleGroups, sg)
			}
		}
		groups = groups[:0]
		return nil
	}
	n := 0
	err := g.Groups(true, func(v audit.GroupView) error {
		groups = append(groups, slices.Clone(v.Refs))
		n += len(v.Refs)
		if n >= resolveChunk {
			n = 0
			return flush()
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if err := flush(); err != nil {
		return nil, nil, err
	}
	ts := make([]string, 0, len(threads))
	for t := range threads {
		ts = append(ts, t)
	}
	slices.Sort(ts)
	return marks, ts, nil
}

// Undo restores what run runID marked.
func Undo(ctx context.Context, b audit.Backend, runID string) (audit.UndoResult, error) {
	if runID == "" {
		return audit.UndoResult{}, errors.New("cleanup: undo needs the run id printed by --apply")
	}
	return b.Undo(ctx, runID)
}
