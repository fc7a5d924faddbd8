package audit

import (
	"cmp"
	"context"
	"encoding/binary"
	"slices"
	"time"
)

// entry is one selected document in 40 bytes: a million of them fit the
// audit's memory budget, where Docs with their strings would not.
type entry struct {
	key    GroupKey
	tsMs   int64
	ref    int64
	marked bool
}

// Grouping is the documents of a selection grouped by key.
type Grouping struct {
	Selection     Selection
	ExcludeMarked bool
	Stats         ScanStats
	KindCounts    map[string]int
	Selected      int // documents of the selection (before --exclude-marked)
	Marked        int // of them, already isDuplicate:true
	entries       []entry
}

// Sizer is implemented by sources that can tell how many documents a scan
// will yield, so the grouping is allocated once.
type Sizer interface {
	Estimate(ctx context.Context, sel Selection) (int, error)
}

// Collect scans sel and groups its documents.
func Collect(ctx context.Context, src Source, sel Selection, excludeMarked bool) (*Grouping, error) {
	if sel.Key == "" {
		sel.Key = KeyAuto
	}
	g := &Grouping{Selection: sel, ExcludeMarked: excludeMarked, KindCounts: map[string]int{}}
	if sz, ok := src.(Sizer); ok {
		if n, err := sz.Estimate(ctx, sel); err == nil && n > 0 {
			g.entries = make([]entry, 0, n)
		}
	}
	window := sel.echoWindow()
	if sel.Key != KeyAuto {
		window = 0
	}
	var cands []echoCand
	excluded := 0
	stats, err := src.Scan(ctx, sel, func(d *Doc) error {
		g.Selected++
		if d.IsDuplicate {
			g.Marked++
			if excludeMarked {
				excluded++
				return nil
			}
		}
		k, kind := sel.Key.Key(d)
		g.KindCounts[kind]++
		g.entries = append(g.entries, entry{key: k, tsMs: d.TsClient.UnixMilli(), ref: d.Ref, marked: d.IsDuplicate})
		if window > 0 && d.Echo != EchoNone {
			cands = append(cands, newEchoCand(d, len(g.entries)-1))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	g.Stats = stats
	if g.Stats.Skipped == nil {
		g.Stats.Skipped = map[string]int{}
	}
	if excluded > 0 {
		g.Stats.Skipped[SkipExcludedMarked] = excluded
	}
	if len(cands) > 0 {
		preferred := g.pairEchoes(cands, window)
		if n, ok := src.(interface{ NotePreferred(map[int64]bool) }); ok {
			n.NotePreferred(preferred)
		}
	}
	slices.SortFunc(g.entries, compareEntries)
	return g, nil
}

// compareEntries orders by key, then within a group oldest first then by
// ref (deterministic samples). The key is compared as two big-endian
// integers, the same order as bytes.Compare: a million entries make the
// comparison the sort's whole cost.
func compareEntries(a, b entry) int {
	if c := cmp.Compare(binary.BigEndian.Uint64(a.key[:8]), binary.BigEndian.Uint64(b.key[:8])); c != 0 {
		return c
	}
	if c := cmp.Compare(binary.BigEndian.Uint64(a.key[8:]), binary.BigEndian.Uint64(b.key[8:])); c != 0 {
		return c
	}
	if c := cmp.Compare(a.tsMs, b.tsMs); c != 0 {
		return c
	}
	return cmp.Compare(a.ref, b.ref)
}

// GroupView is one group of a Grouping.
type GroupView struct {
	Key      GroupKey
	Refs     []int64
	Marked   int
	From, To time.Time
}

// Size is the number of documents in the group.
func (v GroupView) Size() int { return len(v.Refs) }

// Groups calls fn for every group, in key order; Refs is only valid during
// the call. With onlyDuplicates, groups of one document are skipped.
func (g *Grouping) Groups(onlyDuplicates bool, fn func(GroupView) error) error {
	var refs []int64
	for i := 0; i < len(g.entries); {
		j := i + 1
		for j < len(g.entries) && g.entries[j].key == g.entries[i].key {
			j++
		}
		if !onlyDuplicates || j-i > 1 {
			refs = refs[:0]
			v := GroupView{Key: g.entries[i].key}
			for _, e := range g.entries[i:j] {
				refs = append(refs, e.ref)
				if e.marked {
					v.Marked++
				}
			}
			v.Refs = refs
			v.From = time.UnixMilli(g.entries[i].tsMs).UTC()
			v.To = time.UnixMilli(g.entries[j-1].tsMs).UTC()
			if err := fn(v); err != nil {
				return err
			}
		}
		i = j
	}
	return nil
}

// Counts returns the number of grouped documents, of groups, and of
// duplicates (Σ size−1).
func (g *Grouping) Counts() (docs, unique, duplicates int) {
	docs = len(g.entries)
	for i := 0; i < len(g.entries); i++ {
		if i == 0 || g.entries[i].key != g.entries[i-1].key {
			unique++
		}
	}
	return docs, unique, docs - unique
}
