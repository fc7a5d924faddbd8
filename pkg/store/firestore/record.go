package firestore

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/wactl/wactl/pkg/dedupe"
	"github.com/wactl/wactl/pkg/store"
)

// chunkSize bounds one commit: a message costs at most a mapping, a message
// document and a thread summary, far under Firestore's 500-write limit.
// Measured on the emulator, a commit's cost grows faster than its size
// (10,000 history messages: 160 per commit 250 msgs/s, 100 per commit 190,
// 50 per commit 560-680, 25 per commit 250-415): small commits, several
// in flight, are fastest.
const chunkSize = 50

type item struct {
	m  store.Message
	ts time.Time
	// token is written into the mapping. A commit whose answer was lost
	// (timeout, retried RPC) is recognised on the next read by its token,
	// and reported as what it did rather than as a repeat.
	token   string
	planned bool
	outcome store.Outcome
}

func newToken() string {
	var b [12]byte
	_, _ = crand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func tokenAt(tokens []string, i int) string {
	if i < len(tokens) && tokens[i] != "" {
		return tokens[i]
	}
	return newToken()
}

// RecordMessage stores one live (or outbound) message; see store.Store.
func (s *Store) RecordMessage(ctx context.Context, m store.Message) (store.Outcome, error) {
	if err := validate(&m); err != nil {
		return 0, &PermanentError{err}
	}
	it := &item{m: m, ts: msgTime(&m, s.now()), token: newToken()}
	if err := s.record(ctx, []*item{it}); err != nil {
		s.noteErr(err)
		return 0, err
	}
	s.counters.countOutcome(m.AccountID, it.outcome, false)
	return it.outcome, nil
}

// RecordMessages stores live messages in as few commits as possible, with
// the same rules and counters as RecordMessage. Messages are validated
// first; a malformed one fails the whole call with a PermanentError and
// nothing is written. A call that fails midway counts nothing: retried with
// the same write tokens (RecordMessagesTokens), it reports and counts what
// its first attempt did.
func (s *Store) RecordMessages(ctx context.Context, msgs []store.Message) ([]store.Outcome, error) {
	return s.RecordMessagesTokens(ctx, msgs, nil)
}

// RecordMessagesTokens is RecordMessages with caller-chosen write tokens
// (tokens[i] for msgs[i]; empty or missing ones are generated). The journal
// passes one token per entry, stable across restarts.
func (s *Store) RecordMessagesTokens(ctx context.Context, msgs []store.Message, tokens []string) ([]store.Outcome, error) {
	items := make([]*item, len(msgs))
	now := s.now()
	for i := range msgs {
		if err := validate(&msgs[i]); err != nil {
			return nil, &PermanentError{fmt.Errorf("message %d: %w", i, err)}
		}
		items[i] = &item{m: msgs[i], ts: msgTime(&msgs[i], now), token: tokenAt(tokens, i)}
	}
	if err := s.recordLanes(ctx, items); err != nil {
		s.noteErr(err)
		return nil, err
	}
	out := make([]store.Outcome, len(items))
	tally := map[string]*counterDelta{}
	for i, it := range items {
		out[i] = it.outcome
		d := tally[it.m.AccountID]
		if d == nil {
			d = &counterDelta{}
			tally[it.m.AccountID] = d
		}
		d.count(it.outcome, false)
	}
	for acc, d := range tally {
		s.counters.merge(acc, d)
	}
	return out, nil
}

// recordLanes records items in chunks, historyLanes at a time, each lane
// owning the items of a disjoint set of threads.
func (s *Store) recordLanes(ctx context.Context, items []*item) error {
	nLanes := 1
	if len(items) > chunkSize {
		nLanes = historyLanes
	}
	lanes := make([][]*item, nLanes)
	for _, it := range items {
		l := laneOf(it.m.ThreadID, nLanes)
		lanes[l] = append(lanes[l], it)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, nLanes)
	for _, lane := range lanes {
		sort.SliceStable(lane, func(a, b int) bool { return lane[a].m.ThreadID < lane[b].m.ThreadID })
		wg.Go(func() {
			for start := 0; start < len(lane); start += chunkSize {
				if err := s.record(ctx, lane[start:min(start+chunkSize, len(lane))]); err != nil {
					errs <- err
					cancel()
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// RecordHistory stores a history-sync batch; see store.Store. Malformed
// messages are counted in Errors and the rest is still written. A failed
// call counts nothing (see RecordMessages).
func (s *Store) RecordHistory(ctx context.Context, accountID string, msgs []store.Message) (store.HistoryResult, error) {
	return s.RecordHistoryTokens(ctx, accountID, msgs, nil)
}

// historyLanes is how many chunks of one sync are written at once. Each
// lane owns a disjoint set of threads, so lanes never contend for a thread
// summary.
const historyLanes = 4

func laneOf(threadID string, lanes int) int {
	h := fnv.New32a()
	h.Write([]byte(threadID))
	return int(h.Sum32() % uint32(lanes))
}

// RecordHistoryTokens is RecordHistory with write tokens, as
// RecordMessagesTokens.
func (s *Store) RecordHistoryTokens(ctx context.Context, accountID string, msgs []store.Message, tokens []string) (store.HistoryResult, error) {
	res := store.HistoryResult{Total: len(msgs)}
	now := s.now()
	nLanes := 1
	if len(msgs) > chunkSize {
		nLanes = historyLanes
	}
	lanes := make([][]int32, nLanes)
	for i := range msgs {
		m := msgs[i]
		if m.AccountID == "" {
			m.AccountID = accountID
		}
		if validate(&m) != nil || m.AccountID != accountID {
			res.Errors++
			continue
		}
		l := laneOf(m.ThreadID, nLanes)
		lanes[l] = append(lanes[l], int32(i))
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		tally    counterDelta
		firstErr error
		wg       sync.WaitGroup
	)
	for _, lane := range lanes {
		if len(lane) == 0 {
			continue
		}
		// Chunks of one or two threads write each thread summary once
		// per chunk, not once per chunk per thread.
		sort.SliceStable(lane, func(a, b int) bool { return msgs[lane[a]].ThreadID < msgs[lane[b]].ThreadID })
		wg.Go(func() {
			var local counterDelta
			items := make([]*item, 0, chunkSize)
			flush := func() error {
				if len(items) == 0 {
					return nil
				}
				if err := s.record(ctx, items); err != nil {
					return err
				}
				for _, it := range items {
					local.count(it.outcome, true)
				}
				items = items[:0]
				return nil
			}
			for k, i := range lane {
				m := msgs[i]
				m.AccountID = accountID
				items = append(items, &item{m: m, ts: msgTime(&m, now), token: tokenAt(tokens, int(i))})
				if len(items) == chunkSize || k == len(lane)-1 {
					if err := flush(); err != nil {
						mu.Lock()
						if firstErr == nil {
							firstErr = err
						}
						mu.Unlock()
						cancel()
						return
					}
				}
			}
			mu.Lock()
			tally.wrote += local.wrote
			tally.skipped += local.skipped
			tally.strong += local.strong
			tally.hWrote += local.hWrote
			tally.hSkipped += local.hSkipped
			mu.Unlock()
		})
	}
	wg.Wait()
	if firstErr != nil {
		s.noteErr(firstErr)
		return store.HistoryResult{Total: len(msgs)}, firstErr
	}
	s.counters.merge(accountID, &tally)
	res.Saved = int(tally.hWrote)
	res.Skipped = int(tally.hSkipped)
	s.counters.add(accountID, func(d *counterDelta) {
		d.hLastRunAt, d.hLastBatch, d.hasBatch = s.now(), len(msgs), true
	})
	s.noteHistoryOnAccount(context.WithoutCancel(ctx), accountID, res)
	return res, nil
}

// noteHistoryOnAccount keeps the account document's legacy history fields
// current. The account may not exist (history for an account registered
// elsewhere): that is not an error of the sync.
func (s *Store) noteHistoryOnAccount(ctx context.Context, accountID string, res store.HistoryResult) {
	_, err := s.c.Collection(colAccounts).Doc(accountID).Update(ctx, []firestore.Update{
		{Path: "lastHistorySyncAt", Value: firestore.ServerTimestamp},
		{Path: "historySyncCount", Value: firestore.Increment(1)},
		{Path: "lastHistorySyncResult", Value: map[string]any{
			"saved": res.Saved, "skipped": res.Skipped, "errors": res.Errors, "total": res.Total,
		}},
	})
	if err != nil && !isNotFound(err) {
		s.log.Warn("history sync: account summary not updated", "account", accountID, "err", err)
	}
}

// record writes items (at most chunkSize) atomically, retrying after
// conflicts with concurrent writers. A chunk that keeps conflicting is split
// so that a busy thread cannot starve a large batch.
func (s *Store) record(ctx context.Context, items []*item) error {
	backoff := 5 * time.Millisecond
	// Written blind: a live message (almost always new), or a chunk of a
	// fresh sync. Nothing is read but thread summaries this store has not
	// written or read before (threadcache.go): Create preconditions still
	// refuse any existing mapping or document, the cached update time
	// refuses a thread someone else changed, and a refusal falls back to
	// reading everything.
	blind := !s.strong && (len(items) == 1 || s.blindOK.Load())
	for attempt := 0; ; attempt++ {
		err := s.tryRecord(ctx, items, blind && attempt == 0)
		if err == nil {
			if len(items) > 1 {
				all := true
				for _, it := range items {
					all = all && it.outcome == store.Wrote
				}
				s.blindOK.Store(all)
			}
			return nil
		}
		if blind && attempt == 0 {
			if len(items) > 1 {
				s.blindOK.Store(false)
			}
			for _, it := range items {
				s.threads.drop(s.threadRef(it.m.ThreadID).Path)
			}
			if refused(err) {
				// Nothing of the blind commit was applied: decide
				// again from what is stored, at once.
				for _, it := range items {
					it.planned = false
				}
				continue
			}
		}
		if !isConflict(err) {
			return fmt.Errorf("firestore: record messages: %w", err)
		}
		if len(items) > 1 && attempt >= 2 {
			half := len(items) / 2
			if err := s.record(ctx, items[:half]); err != nil {
				return err
			}
			return s.record(ctx, items[half:])
		}
		if attempt >= 100 {
			return fmt.Errorf("firestore: record messages: still conflicting after %d attempts: %w", attempt, err)
		}
		d := backoff + rand.N(backoff)
		backoff = min(backoff*2, 200*time.Millisecond)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
	}
}

type threadPlan struct {
	ref     *firestore.DocumentRef
	exists  bool
	data    map[string]any // as stored (read, or cached from our last write)
	updated time.Time
	newest  *item
	// Set by planThread when it writes: the write's index in the batch and
	// the thread's data after it, for the cache.
	wrote int
	after map[string]any
}

// tryRecord reads everything the decision needs in one round trip and
// commits one batch whose preconditions fail if anyone else got there first.
func (s *Store) tryRecord(ctx context.Context, items []*item, blind bool) error {
	refs := make([]*firestore.DocumentRef, 0, 3*len(items))
	index := map[string]int{}
	cached := map[string]cachedThread{} // thread summaries known without a read
	want := func(r *firestore.DocumentRef) {
		if _, ok := index[r.Path]; !ok {
			index[r.Path] = len(refs)
			refs = append(refs, r)
		}
	}
	for _, it := range items {
		if !blind && it.m.WAMessageID != "" {
			want(s.mappingRef(it.m.AccountID, it.m.WAMessageID))
		}
		if !blind {
			want(s.messageRef(it.m.ThreadID, it.m.DocID))
		}
		tr := s.threadRef(it.m.ThreadID)
		if blind {
			if c, ok := s.threads.get(tr.Path); ok {
				cached[tr.Path] = c
				continue
			}
		}
		want(tr)
	}
	var snaps []*firestore.DocumentSnapshot
	if len(refs) > 0 {
		var err error
		if snaps, err = s.c.GetAll(ctx, refs); err != nil {
			return err
		}
	}
	absent := &firestore.DocumentSnapshot{}
	snapOf := func(r *firestore.DocumentRef) *firestore.DocumentSnapshot {
		i, ok := index[r.Path]
		if !ok {
			return absent // blind: assumed absent, enforced by Create
		}
		return snaps[i]
	}

	b := s.c.Batch()
	writes := 0
	claimed := map[string]bool{} // mapping and message paths taken earlier in this chunk
	threads := map[string]*threadPlan{}
	fingerprints := map[string]string{} // thread|fingerprint → doc written in this chunk
	planThreadOf := func(it *item) {
		tr := s.threadRef(it.m.ThreadID)
		tp := threads[tr.Path]
		if tp == nil {
			tp = &threadPlan{ref: tr, wrote: -1}
			if c, ok := cached[tr.Path]; ok {
				tp.exists, tp.data, tp.updated = true, c.data, c.updated
			} else if snap := snaps[index[tr.Path]]; snap.Exists() {
				tp.exists, tp.data, tp.updated = true, snap.Data(), snap.UpdateTime
			}
			threads[tr.Path] = tp
		}
		if tp.newest == nil || it.ts.After(tp.newest.ts) {
			tp.newest = it
		}
	}
	for _, it := range items {
		if !it.planned {
			it.outcome = store.Skipped
		}
		m := &it.m
		msgRef := s.messageRef(m.ThreadID, m.DocID)
		var mapRef *firestore.DocumentRef
		if m.WAMessageID != "" {
			mapRef = s.mappingRef(m.AccountID, m.WAMessageID)
			if ms := snapOf(mapRef); ms.Exists() {
				adopted, err := s.adoptRacedEcho(ctx, b, it, ms, snapOf(msgRef), claimed)
				if err != nil {
					return err
				}
				if adopted {
					writes += 3
					it.outcome, it.planned = store.Updated, true
					planThreadOf(it)
					continue
				}
				if getStr(ms.Data(), "writeId") != it.token {
					it.outcome = store.Skipped
				} else if !it.planned {
					// An earlier call with this token landed.
					it.outcome = store.Wrote
					if getStr(ms.Data(), "docId") != m.DocID {
						it.outcome = store.StrongSkipped
					}
				}
				continue
			}
			if claimed[mapRef.Path] {
				it.outcome = store.Skipped
				continue
			}
		}
		it.outcome, it.planned = store.Skipped, true
		if claimed[msgRef.Path] {
			continue
		}
		msgSnap := snapOf(msgRef)
		switch {
		case msgSnap.Exists():
			existing := msgSnap.Data()
			if mapRef == nil {
				// A queued send recorded again: only its status can change
				// (the outbox worker marks a send failed for good this way).
				if m.Status != "" && statusRank(m.Status) > statusRank(getStr(existing, "status")) {
					b.Update(msgRef, []firestore.Update{
						{Path: "status", Value: m.Status},
						{Path: "updatedAt", Value: firestore.ServerTimestamp},
					}, firestore.LastUpdateTime(msgSnap.UpdateTime))
					writes++
					claimed[msgRef.Path] = true
					it.outcome = store.Updated
				}
				continue
			}
			b.Create(mapRef, mappingDoc(m, m.DocID, it.token, s.now()))
			writes++
			claimed[mapRef.Path] = true
			if getStr(existing, "waMessageId") == m.WAMessageID {
				// Written before mappings existed (old system): adopt, don't copy.
				continue
			}
			b.Update(msgRef, adoptUpdates(m, existing, it.ts), firestore.LastUpdateTime(msgSnap.UpdateTime))
			writes++
			claimed[msgRef.Path] = true
			it.outcome = store.Updated
		default:
			if s.strong && m.FingerprintHash != "" {
				dup := fingerprints[m.ThreadID+"|"+m.FingerprintHash]
				if dup == "" {
					var err error
					if dup, err = s.fingerprintTwin(ctx, m); err != nil {
						return err
					}
				}
				if dup != "" {
					if mapRef != nil {
						b.Create(mapRef, mappingDoc(m, dup, it.token, s.now()))
						writes++
						claimed[mapRef.Path] = true
					}
					it.outcome = store.StrongSkipped
					continue
				}
			}
			if mapRef != nil {
				b.Create(mapRef, mappingDoc(m, m.DocID, it.token, s.now()))
				writes++
				claimed[mapRef.Path] = true
			}
			b.Create(msgRef, messageDoc(m, it.ts))
			writes++
			claimed[msgRef.Path] = true
			if m.FingerprintHash != "" {
				fingerprints[m.ThreadID+"|"+m.FingerprintHash] = m.DocID
			}
			it.outcome = store.Wrote
		}
		planThreadOf(it)
	}
	for _, tp := range threads {
		if w := s.planThread(b, tp); w {
			tp.wrote = writes
			writes++
		}
	}
	if writes == 0 {
		s.cacheThreads(threads, nil)
		return nil
	}
	res, err := b.Commit(ctx)
	if err != nil {
		return err
	}
	s.cacheThreads(threads, res)
	return nil
}

// cacheThreads remembers each thread as it is after the commit whose
// results are res (nil: nothing was written).
func (s *Store) cacheThreads(threads map[string]*threadPlan, res []*firestore.WriteResult) {
	for _, tp := range threads {
		switch {
		case tp.wrote >= 0 && tp.wrote < len(res):
			s.threads.put(tp.ref.Path, cachedThread{data: tp.after, updated: res[tp.wrote].UpdateTime})
		case tp.wrote < 0 && tp.exists:
			s.threads.put(tp.ref.Path, cachedThread{data: tp.data, updated: tp.updated})
		}
	}
}

// adoptRacedEcho handles an app send (under its requestId) recorded with
// its WhatsApp id after the echo of the same send got a document of its
// own (history sync or another device got there first): the mapping leads
// to the echo's document. The app shows the requestId document, so that one
// stays and learns the id; the echo's is marked a duplicate of it (never
// deleted) and the mapping is pointed at it, all in the same commit. It
// reports false, writing nothing, when there is no such race.
func (s *Store) adoptRacedEcho(ctx context.Context, b *firestore.WriteBatch, it *item, mapSnap, appSnap *firestore.DocumentSnapshot, claimed map[string]bool) (bool, error) {
	m := &it.m
	md := mapSnap.Data()
	derived := dedupe.MessageDocID(m.AccountID, m.WAMessageID)
	if m.DocID == derived || getStr(md, "docId") != derived || !appSnap.Exists() {
		return false, nil
	}
	echoRef := s.messageRef(getStr(md, "threadId"), derived)
	if echoRef.Path == appSnap.Ref.Path || claimed[echoRef.Path] || claimed[appSnap.Ref.Path] || claimed[mapSnap.Ref.Path] {
		return false, nil
	}
	echoSnap, err := echoRef.Get(ctx)
	if isNotFound(err) {
		return false, nil // a mapping without its document: leave it to the audit
	}
	if err != nil {
		return false, err
	}
	b.Update(mapSnap.Ref, []firestore.Update{
		{Path: "docId", Value: m.DocID},
		{Path: "threadId", Value: m.ThreadID},
		{Path: "writeId", Value: it.token},
		{Path: "updatedAt", Value: firestore.ServerTimestamp},
	}, firestore.LastUpdateTime(mapSnap.UpdateTime))
	b.Update(echoRef, []firestore.Update{
		{Path: "isDuplicate", Value: true},
		{Path: "duplicateOf", Value: m.DocID},
		{Path: "duplicateMarkedAt", Value: firestore.ServerTimestamp},
		{Path: "updatedAt", Value: firestore.ServerTimestamp},
	}, firestore.LastUpdateTime(echoSnap.UpdateTime))
	b.Update(appSnap.Ref, adoptUpdates(m, appSnap.Data(), it.ts), firestore.LastUpdateTime(appSnap.UpdateTime))
	claimed[mapSnap.Ref.Path], claimed[echoRef.Path], claimed[appSnap.Ref.Path] = true, true, true
	return true, nil
}

// planThread adds the thread summary write, if the chunk's newest message is
// newer than the summary. History never moves lastMessageAt back.
func (s *Store) planThread(b *firestore.WriteBatch, tp *threadPlan) bool {
	it := tp.newest
	if !tp.exists {
		d := threadIdentity(&it.m)
		for k, v := range threadSummary(&it.m, it.ts) {
			d[k] = v
		}
		b.Create(tp.ref, d)
		tp.after = d
		return true
	}
	cur := tp.data
	curMs := getInt(cur, "lastMessageAtMs")
	if curMs == 0 {
		curMs = getTime(cur, "lastMessageAt").UnixMilli()
	}
	if it.ts.UnixMilli() <= curMs && getStr(cur, "accountId") != "" {
		return false
	}
	var up []firestore.Update
	if it.ts.UnixMilli() > curMs {
		for k, v := range threadSummary(&it.m, it.ts) {
			up = append(up, firestore.Update{Path: k, Value: v})
		}
	}
	for k, v := range threadIdentity(&it.m) {
		switch v := v.(type) {
		case string:
			fill := v != "" && getStr(cur, k) == ""
			names := (k == "displayName" || k == "groupSubject") && v != "" && v != getStr(cur, k) && it.ts.UnixMilli() > curMs
			if fill || names {
				up = append(up, firestore.Update{Path: k, Value: v})
			}
		case bool:
			if _, ok := cur[k]; !ok {
				up = append(up, firestore.Update{Path: k, Value: v})
			}
		}
	}
	if len(up) == 0 {
		return false
	}
	b.Update(tp.ref, up, firestore.LastUpdateTime(tp.updated))
	tp.after = afterWrite(cur, up)
	return true
}

// fingerprintTwin returns the document id of another message with the same
// strong fingerprint in the thread, or "". Best effort: two twins written at
// the same instant by two writers can both land.
func (s *Store) fingerprintTwin(ctx context.Context, m *store.Message) (string, error) {
	docs, err := s.threadRef(m.ThreadID).Collection(colMessages).
		Where("fingerprintHash", "==", m.FingerprintHash).Limit(2).Documents(ctx).GetAll()
	if err != nil {
		return "", err
	}
	for _, d := range docs {
		if d.Ref.ID != m.DocID && getStr(d.Data(), "waMessageId") != m.WAMessageID {
			return d.Ref.ID, nil
		}
	}
	return "", nil
}
