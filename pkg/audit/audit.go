package audit

import (
	"context"
	"encoding/hex"
	"slices"
	"time"
)

// Options of an audit.
type Options struct {
	Selection     Selection
	ExcludeMarked bool
	TopGroups     int // groups listed in the report; 0 means 10
	Samples       int // sample document ids per group; 0 means 3
	// Clock measures tookMs; nil means time.Now.
	Clock func() time.Time
}

// Report is the audit's result, with the field names the operators'
// scripts printed (and the fields they lacked).
type Report struct {
	TotalDocs          int            `json:"totalDocs"`
	UniqueFingerprints int            `json:"uniqueFingerprints"`
	DuplicatesCount    int            `json:"duplicatesCount"`
	MarkedDocs         int            `json:"markedDocs"`
	ActiveDocs         int            `json:"activeDocs"`
	Groups             []GroupReport  `json:"groups"`
	Window             string         `json:"window"`
	WindowHours        float64        `json:"windowHours"`
	Limit              int            `json:"limit"`
	Key                KeyStrategy    `json:"key"`
	ExcludeMarked      bool           `json:"excludeMarked"`
	KeyStrategyCounts  map[string]int `json:"keyStrategyCounts"`
	TsClientShapes     map[string]int `json:"tsClientShapes"`
	ParseFailures      int            `json:"parseFailures"`
	Scanned            int            `json:"scanned"`
	// Skipped counts the documents read but not grouped, by reason
	// (noTime, outsideWindow, overLimit, excludedMarked): scanned =
	// totalDocs + Σ skipped.
	Skipped map[string]int `json:"skipped"`
	TookMs  int64          `json:"tookMs"`
}

// GroupReport is one group of duplicates.
type GroupReport struct {
	Fingerprint   string    `json:"fp"`
	ThreadID      string    `json:"threadId"`
	Size          int       `json:"size"`
	Marked        int       `json:"marked"`
	SampleDocIDs  []string  `json:"sampleDocIds"`
	TsClientRange [2]string `json:"tsClientRange"`
}

// Run audits one selection. It only reads.
func Run(ctx context.Context, src Source, o Options) (*Report, error) {
	clock := o.Clock
	if clock == nil {
		clock = time.Now
	}
	start := clock()
	g, err := Collect(ctx, src, o.Selection, o.ExcludeMarked)
	if err != nil {
		return nil, err
	}
	r := Summarize(g)
	if err := r.addTopGroups(ctx, src, g, o.TopGroups, o.Samples); err != nil {
		return nil, err
	}
	r.TookMs = clock().Sub(start).Milliseconds()
	return r, nil
}

// Summarize turns a grouping into a report without groups.
func Summarize(g *Grouping) *Report {
	docs, unique, dups := g.Counts()
	sel := g.Selection
	r := &Report{
		TotalDocs: docs, UniqueFingerprints: unique, DuplicatesCount: dups,
		MarkedDocs: g.Marked, ActiveDocs: g.Selected - g.Marked,
		Groups:            []GroupReport{},
		Limit:             sel.Limit,
		Key:               sel.Key,
		ExcludeMarked:     g.ExcludeMarked,
		KeyStrategyCounts: g.KindCounts,
		TsClientShapes:    g.Stats.Shapes,
		ParseFailures:     g.Stats.ParseFailures,
		Scanned:           g.Stats.Scanned,
		Skipped:           g.Stats.Skipped,
	}
	if r.Skipped == nil {
		r.Skipped = map[string]int{}
	}
	if r.TsClientShapes == nil {
		r.TsClientShapes = map[string]int{}
	}
	if sel.Window > 0 {
		r.Window = sel.Window.String()
		r.WindowHours = sel.Window.Hours()
	}
	return r
}

type topGroup struct {
	key    GroupKey
	size   int
	marked int
	from   time.Time
	to     time.Time
	refs   []int64
}

func (r *Report) addTopGroups(ctx context.Context, src Source, g *Grouping, top, samples int) error {
	if top <= 0 {
		top = 10
	}
	if samples <= 0 {
		samples = 3
	}
	// Keep the top groups only: largest first, then newest, then key.
	var best []topGroup
	less := func(a, b topGroup) int {
		if a.size != b.size {
			return b.size - a.size
		}
		if !a.to.Equal(b.to) {
			return b.to.Compare(a.to)
		}
		return slices.Compare(a.key[:], b.key[:])
	}
	err := g.Groups(true, func(v GroupView) error {
		t := topGroup{key: v.Key, size: v.Size(), marked: v.Marked, from: v.From, to: v.To}
		if len(best) == top && less(t, best[len(best)-1]) >= 0 {
			return nil
		}
		t.refs = slices.Clone(v.Refs[:min(samples, len(v.Refs))])
		best = append(best, t)
		slices.SortFunc(best, less)
		if len(best) > top {
			best = best[:top]
		}
		return nil
	})
	if err != nil {
		return err
	}
	var refs []int64
	for _, t := range best {
		refs = append(refs, t.refs...)
	}
	docs, err := src.Resolve(ctx, refs)
	if err != nil {
		return err
	}
	byRef := make(map[int64]*Doc, len(docs))
	for i := range docs {
		byRef[docs[i].Ref] = &docs[i]
	}
	for _, t := range best {
		gr := GroupReport{
			Fingerprint: hex.EncodeToString(t.key[:8]),
			Size:        t.size, Marked: t.marked,
			SampleDocIDs:  []string{},
			TsClientRange: [2]string{t.from.Format(time.RFC3339), t.to.Format(time.RFC3339)},
		}
		for _, ref := range t.refs {
			if d := byRef[ref]; d != nil {
				gr.ThreadID = d.ThreadID
				gr.SampleDocIDs = append(gr.SampleDocIDs, d.ID)
			}
		}
		r.Groups = append(r.Groups, gr)
	}
	return nil
}
