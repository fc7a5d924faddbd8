package audit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/api/iterator"
)

// Firestore names of the contract.
const (
	colThreads  = "threads"
	colMessages = "messages"
	colRuns     = "cleanup_runs"
)

// Firestore is the audit backend of the Firestore store.
type Firestore struct {
	c *firestore.Client
	// refs maps Doc.Ref of the last scan to its document as (thread id,
	// doc id): a scan holds only these, never documents or DocumentRefs
	// (which weigh ten times more).
	refs [][2]string
	// preferred are the refs of the last scan that Collect found to be
	// the queued document of an echo pair (NotePreferred).
	preferred map[int64]bool
	close     func() error
}

// NotePreferred records the queued documents of the echo pairs Collect
// joined, so that Resolve flags them Preferred.
func (f *Firestore) NotePreferred(refs map[int64]bool) { f.preferred = refs }

// NewFirestore wraps an open client; Close does not close it.
func NewFirestore(c *firestore.Client) *Firestore { return &Firestore{c: c} }

func (f *Firestore) Name() string { return "firestore" }

// Close closes the client only when Open created it.
func (f *Firestore) Close() error {
	if f.close != nil {
		return f.close()
	}
	return nil
}

// base is the messages of the selection: one thread's subcollection, or the
// collection group, of one account or all.
func (f *Firestore) base(sel Selection) firestore.Query {
	if sel.ThreadID != "" {
		return f.c.Collection(colThreads).Doc(sel.ThreadID).Collection(colMessages).Query
	}
	q := f.c.CollectionGroup(colMessages).Query
	if sel.AccountID != "" {
		q = q.Where("accountId", "==", sel.AccountID)
	}
	return q
}

// Scan reads the selection in three queries. Documents with a Timestamp
// tsClient come newest first from the tsClient index. Firestore ranges and
// orders values by type, so documents of the old system whose tsClient is a
// string are invisible to that query: a second query reads them (strings
// sort after timestamps) and parses them here. Documents without tsClient
// are found through tsClientMs, reading only tsClient to tell them apart.
// The second and third sets are small legacy leftovers; they are merged
// into the newest-first stream so the limit applies to all shapes alike.
func (f *Firestore) Scan(ctx context.Context, sel Selection, fn func(*Doc) error) (ScanStats, error) {
	st := ScanStats{Shapes: map[string]int{}, Skipped: map[string]int{}}
	f.refs = f.refs[:0]
	f.preferred = nil
	since := sel.Since()
	lower := since
	if lower.IsZero() {
		lower = time.Unix(0, 0).UTC()
	}

	odd, err := f.oddShapes(ctx, sel, since, &st)
	if err != nil {
		return st, err
	}
	emitted := 0
	emit := func(d *Doc, ref *firestore.DocumentRef) error {
		d.Ref = int64(len(f.refs))
		f.refs = append(f.refs, [2]string{d.ThreadID, d.ID})
		st.Shapes[d.Shape.String()]++
		emitted++
		return fn(d)
	}
	full := func() bool { return sel.Limit > 0 && emitted >= sel.Limit }

	q := f.base(sel).Where("tsClient", ">=", lower).OrderBy("tsClient", firestore.Desc)
	if sel.Limit > 0 {
		q = q.Limit(sel.Limit)
	}
	it := q.Documents(ctx)
	defer it.Stop()
	var d Doc
	for !full() {
		snap, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return st, indexError(err, sel, "tsClient")
		}
		st.Scanned++
		fillDoc(&d, snap, sel.Key)
		for len(odd) > 0 && odd[0].TsClient.After(d.TsClient) && !full() {
			if err := emit(&odd[0].Doc, odd[0].ref); err != nil {
				return st, err
			}
			odd = odd[1:]
		}
		if full() {
			st.skip(SkipOverLimit)
			break
		}
		if err := emit(&d, snap.Ref); err != nil {
			return st, err
		}
	}
	for len(odd) > 0 && !full() {
		if err := emit(&odd[0].Doc, odd[0].ref); err != nil {
			return st, err
		}
		odd = odd[1:]
	}
	for range odd {
		st.skip(SkipOverLimit)
	}
	return st, nil
}

type refDoc struct {
	Doc
	ref *firestore.DocumentRef
}

// oddShapes returns the documents of the selection whose tsClient is a
// string or missing, newest first.
func (f *Firestore) oddShapes(ctx context.Context, sel Selection, since time.Time, st *ScanStats) ([]refDoc, error) {
	var out []refDoc
	it := f.base(sel).Where("tsClient", ">=", "").OrderBy("tsClient", firestore.Desc).Documents(ctx)
	defer it.Stop()
	for {
		snap, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return nil, indexError(err, sel, "tsClient")
		}
		st.Scanned++
		var d refDoc
		fillDoc(&d.Doc, snap, sel.Key)
		if d.Shape == ShapeUnparsable {
			st.ParseFailures++
			st.skip(SkipNoTime)
			continue
		}
		if !since.IsZero() && d.TsClient.Before(since) {
			st.skip(SkipOutsideWindow)
			continue
		}
		d.ref = snap.Ref
		out = append(out, d)
	}

	// Documents without tsClient: find them by tsClientMs, reading only
	// tsClient, then fetch the few that lack it.
	q := f.base(sel).Where("tsClientMs", ">=", since.UnixMilli()).OrderBy("tsClientMs", firestore.Desc).Select("tsClient")
	if since.IsZero() {
		q = f.base(sel).Where("tsClientMs", ">=", 0).OrderBy("tsClientMs", firestore.Desc).Select("tsClient")
	}
	if sel.Limit > 0 {
		q = q.Limit(sel.Limit)
	}
	var missing []*firestore.DocumentRef
	seen := map[string]bool{}
	it2 := q.Documents(ctx)
	defer it2.Stop()
	for {
		snap, err := it2.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return nil, indexError(err, sel, "tsClientMs")
		}
		switch snap.Data()["tsClient"].(type) {
		case time.Time, string:
			continue // read by the other queries
		}
		missing = append(missing, snap.Ref)
		seen[snap.Ref.Path] = true
	}
	// Documents with neither tsClient nor a numeric tsClientMs (the old
	// service's receipts and some of its outbound writes) are found by the
	// server times the old audit fell back to. tsServer and createdAt are
	// queried; ingestedAt was only ever written with both.
	lower := since
	if lower.IsZero() {
		lower = time.Unix(0, 0).UTC()
	}
	for _, field := range []string{"tsServer", "createdAt"} {
		q := f.base(sel).Where(field, ">=", lower).OrderBy(field, firestore.Desc).Select("tsClient", "tsClientMs")
		if sel.Limit > 0 {
			q = q.Limit(sel.Limit)
		}
		it := q.Documents(ctx)
		for {
			snap, err := it.Next()
			if errors.Is(err, iterator.Done) {
				break
			}
			if err != nil {
				it.Stop()
				return nil, indexError(err, sel, field)
			}
			m := snap.Data()
			switch m["tsClient"].(type) {
			case time.Time, string:
				continue // read by the tsClient queries
			}
			switch m["tsClientMs"].(type) {
			case int64, float64:
				continue // read by the tsClientMs query
			}
			if seen[snap.Ref.Path] {
				continue
			}
			seen[snap.Ref.Path] = true
			missing = append(missing, snap.Ref)
		}
		it.Stop()
	}
	for chunk := range slices.Chunk(missing, 300) {
		snaps, err := f.c.GetAll(ctx, chunk)
		if err != nil {
			return nil, fmt.Errorf("read documents without tsClient: %w", err)
		}
		for _, snap := range snaps {
			if !snap.Exists() {
				continue
			}
			st.Scanned++
			var d refDoc
			fillDoc(&d.Doc, snap, sel.Key)
			if d.Shape == ShapeUnparsable {
				st.ParseFailures++
				st.skip(SkipNoTime)
				continue
			}
			if !since.IsZero() && d.TsClient.Before(since) {
				st.skip(SkipOutsideWindow)
				continue
			}
			d.ref = snap.Ref
			out = append(out, d)
		}
	}
	slices.SortStableFunc(out, func(a, b refDoc) int { return b.TsClient.Compare(a.TsClient) })
	return out, nil
}

// fillDoc reads a raw document. The body is kept only when the key needs
// it, so a large scan holds no message text.
func fillDoc(d *Doc, snap *firestore.DocumentSnapshot, key KeyStrategy) {
	m := snap.Data()
	*d = Doc{
		ID:                snap.Ref.ID,
		AccountID:         fsString(m, "accountId"),
		Direction:         fsString(m, "direction"),
		MessageType:       fsString(m, "messageType"),
		StableKeyHash:     fsString(m, "stableKeyHash"),
		FingerprintHash:   fsString(m, "fingerprintHash"),
		ProviderMessageID: fsString(m, "providerMessageId"),
		WAMessageID:       fsString(m, "waMessageId"),
		DuplicateOf:       fsString(m, "duplicateOf"),
		CleanupRunID:      fsString(m, "cleanupRunId"),
		Completeness:      completeness(m),
	}
	if p := snap.Ref.Parent; p != nil && p.Parent != nil {
		d.ThreadID = p.Parent.ID
	}
	d.IsDuplicate, _ = m["isDuplicate"].(bool)
	if key == "" || key.NeedsBody(d.StableKeyHash, d.FingerprintHash, d.ProviderMessageID) {
		d.Body = fsString(m, "body")
	} else if fsString(m, "body") != "" {
		// Stub detection only needs to know a body exists.
		d.Body = "\x00"
	}
	d.IngestedAt, _ = fsTime(m, "ingestedAt")
	d.TsClient, d.Shape = docTime(m)
	if key == KeyFingerprint || (key == KeyAuto && d.StableKeyHash == "") {
		d.FingerprintHash = currentFingerprint(m, d.FingerprintHash)
	}
	d.Echo, d.BodyKey = echoRole(d.ID, d.Direction, fsString(m, "status"), fsString(m, "body"))
	prev := map[string]any{}
	for _, k := range markFields {
		if v, ok := m[k]; ok {
			prev[k] = v
		}
	}
	d.PrevMark = prev
}

// Resolve reads documents of the last scan with all their fields.
func (f *Firestore) Resolve(ctx context.Context, refs []int64) ([]Doc, error) {
	var out []Doc
	for chunk := range slices.Chunk(refs, 300) {
		drs := make([]*firestore.DocumentRef, 0, len(chunk))
		for _, r := range chunk {
			if r < 0 || int(r) >= len(f.refs) {
				return nil, fmt.Errorf("audit: unknown document reference %d", r)
			}
			drs = append(drs, f.msgRef(f.refs[r][0], f.refs[r][1]))
		}
		snaps, err := f.c.GetAll(ctx, drs)
		if err != nil {
			return nil, fmt.Errorf("read documents: %w", err)
		}
		for i, snap := range snaps {
			if !snap.Exists() {
				continue
			}
			var d Doc
			fillDoc(&d, snap, "")
			d.Ref = chunk[i]
			d.Preferred = f.preferred[d.Ref]
			out = append(out, d)
		}
	}
	return out, nil
}
