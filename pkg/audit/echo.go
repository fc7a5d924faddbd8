package audit

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// KindRequestEcho counts, in keyStrategyCounts, the echo pairs joined.
const KindRequestEcho = "requestEcho"

// echoCand is an outbound document with a body, candidate for a pair.
type echoCand struct {
	thread string
	body   uint64
	tsMs   int64
	idx    int // in Grouping.entries
	role   EchoRole
	// waID is the queued document's waMessageId (set once the send went
	// out), or the echo's WhatsApp id: when the queued document has one,
	// only the echo of that id pairs with it.
	waID string
}

// echoSkew is how much earlier than its queued document an echo may be
// stamped: the old service stamped the queued document after the send
// returned, in milliseconds, and the echo with WhatsApp's time, in seconds.
const echoSkew = 2 * time.Second

func newEchoCand(d *Doc, idx int) echoCand {
	c := echoCand{thread: d.ThreadID, body: d.BodyKey, tsMs: d.TsClient.UnixMilli(), idx: idx, role: d.Echo, waID: d.WAMessageID}
	if c.role == EchoQueued {
		c.tsMs -= echoSkew.Milliseconds()
	} else if c.waID == "" {
		c.waID = d.ProviderMessageID
	}
	return c
}

// pairEchoes joins each echo to the queued document of the same send: the
// same thread and normalised body, written at most window after it (and
// at most echoSkew before), and when the queued document knows the id its
// send got, that very id. Within
// a thread and body, queued documents and echoes pair first-in first-out,
// so the same text sent twice pairs twice. A pair whose documents already
// share a key needs nothing. The groups of a pair are merged (the echo may
// have twins of its own under its key). It returns the refs of the queued
// documents that were joined: cleanup keeps those canonical, as the app
// holds their ids.
func (g *Grouping) pairEchoes(cands []echoCand, window time.Duration) map[int64]bool {
	slices.SortFunc(cands, func(a, b echoCand) int {
		if c := strings.Compare(a.thread, b.thread); c != 0 {
			return c
		}
		if c := cmp.Compare(a.body, b.body); c != 0 {
			return c
		}
		if c := cmp.Compare(a.tsMs, b.tsMs); c != 0 {
			return c
		}
		return cmp.Compare(a.role, b.role) // queued before echo at the same instant
	})
	win := (window + echoSkew).Milliseconds()
	parent := map[GroupKey]GroupKey{}
	find := func(k GroupKey) GroupKey {
		for {
			p, ok := parent[k]
			if !ok {
				return k
			}
			k = p
		}
	}
	preferred := map[int64]bool{}
	pairs := 0
	for i := 0; i < len(cands); {
		j := i
		for j < len(cands) && cands[j].thread == cands[i].thread && cands[j].body == cands[i].body {
			j++
		}
		var queue []echoCand // unpaired queued documents, oldest first
		for _, c := range cands[i:j] {
			if c.role == EchoQueued {
				queue = append(queue, c)
				continue
			}
			for len(queue) > 0 && queue[0].tsMs+win < c.tsMs {
				queue = queue[1:] // its echo never came (or came too late)
			}
			k := slices.IndexFunc(queue, func(q echoCand) bool { return q.waID == "" || q.waID == c.waID })
			if k < 0 {
				continue
			}
			q := queue[k]
			queue = slices.Delete(queue, k, k+1)
			qk, ek := find(g.entries[q.idx].key), find(g.entries[c.idx].key)
			if qk == ek {
				continue
			}
			parent[ek] = qk
			preferred[g.entries[q.idx].ref] = true
			pairs++
		}
		i = j
	}
	if pairs == 0 {
		return nil
	}
	for i := range g.entries {
		g.entries[i].key = find(g.entries[i].key)
	}
	g.KindCounts[KindRequestEcho] += pairs
	return preferred
}
