package daemon

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// StatusMaxAge bounds how old the snapshot behind /health and the
// dashboard may be when the daemon serves them (issue 21: at 200 accounts,
// building the status on every request made /health 0.16× and the
// dashboard 0.01× a bare handler). An account's state change (anything
// that marks it for the status writer: connect, drop, QR, logout, stop,
// retry) invalidates the snapshot at once; everything else (lease time
// left, store reachability, counters, last event times) is at most this
// old. /ready and /readyz are not cached.
const StatusMaxAge = 250 * time.Millisecond

// statusCache keeps the last status snapshot with its answers encoded, so
// that the polled routes cost a pointer load, the request id spliced in,
// and one write.
type statusCache struct {
	status StatusFunc
	// version changes whenever something the snapshot shows has changed
	// and must show at once; nil: only the age bound applies.
	version func() uint64
	maxAge  time.Duration
	now     func() time.Time

	cur atomic.Pointer[statusSnap]
	mu  sync.Mutex // one rebuild at a time; the others wait for it
}

// statusSnap is one snapshot and its rendered answers.
type statusSnap struct {
	version uint64
	at      time.Time
	s       Status

	// /health: the body is head + JSON string of the request id + tail.
	healthCode       int
	healthHead, tail []byte

	// The dashboard's two views, rendered on first use (most snapshots
	// are only ever seen by /health).
	dashOnce, flatOnce sync.Once
	dash, flat         splicedBody
	// The full dashboard compressed, made on the first request that
	// accepts gzip (statusgzip.go).
	gzOnce sync.Once
	gz     gzipBody
	gzOK   bool
}

// splicedBody is an encoded answer whose "requestId" value is left out:
// head ends with `"requestId":`, tail starts after the value.
type splicedBody struct{ head, tail []byte }

func newStatusCache(f StatusFunc, maxAge time.Duration, version func() uint64, now func() time.Time) *statusCache {
	if now == nil {
		now = time.Now
	}
	return &statusCache{status: f, version: version, maxAge: maxAge, now: now}
}

// get returns a snapshot no older than maxAge and taken after the last
// version change; with maxAge <= 0, a new one every call.
func (c *statusCache) get() *statusSnap {
	if c.maxAge <= 0 {
		return c.build(0)
	}
	if p := c.cur.Load(); p != nil && c.fresh(p) {
		return p
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.cur.Load(); p != nil && c.fresh(p) {
		return p // another request rebuilt it while this one waited
	}
	var v uint64
	if c.version != nil {
		// Read before the status: a change made while it is built
		// leaves the version behind, and the next request rebuilds.
		v = c.version()
	}
	p := c.build(v)
	c.cur.Store(p)
	return p
}

func (c *statusCache) fresh(p *statusSnap) bool {
	if c.version != nil && c.version() != p.version {
		return false
	}
	age := c.now().Sub(p.at)
	return age >= 0 && age < c.maxAge
}

func (c *statusCache) build(v uint64) *statusSnap {
	p := &statusSnap{version: v, at: c.now(), s: c.status()}
	var b healthBody
	p.healthCode = newHealthBody(&p.s, &b)
	full := appendHealthJSON(nil, &b) // RequestID "" renders as ""
	head := len(`{"success":`) + len(`,"requestId":`)
	if b.Success {
		head += len("true")
	} else {
		head += len("false")
	}
	p.healthHead = full[:head:head]
	p.tail = append(full[head+len(`""`):], '\n') // the newline json.Encoder writes
	return p
}

// serverBuffered is what net/http buffers of an answer before it must
// choose between Content-Length and chunking (bufferBeforeChunkingSize):
// an answer this small, written at once, gets its Content-Length from the
// server, which formats it without allocating and keeps one header fewer
// for WriteHeader to clone and sort (/health is ~700 bytes: two
// allocations fewer per request).
const serverBuffered = 2048

// writeSpliced answers with head, the request id as a JSON string, tail.
// A large body (100 KB for a dashboard of 200 accounts, most of it before
// the id since encoding/json sorts "accounts" first) is written from the
// snapshot, not copied; the length is known, so it is not chunked.
func writeSpliced(w http.ResponseWriter, r *http.Request, code int, head, tail []byte) {
	buf := getBody()
	small := len(head)+len(tail) <= 4096
	if small {
		*buf = append(*buf, head...)
	}
	*buf = appendJSONString(*buf, RequestID(r))
	if small {
		*buf = append(*buf, tail...)
	}
	n := len(*buf)
	if !small {
		n += len(head) + len(tail)
	}
	setJSONHeaders(w)
	if n > serverBuffered {
		w.Header()["Content-Length"] = []string{strconv.Itoa(n)}
	}
	w.WriteHeader(code)
	if small {
		_, _ = w.Write(*buf)
	} else {
		_, _ = w.Write(head)
		_, _ = w.Write(*buf)
		_, _ = w.Write(tail)
	}
	putBody(buf)
}

// dashboardBody returns the dashboard of p, rendering it on first use.
func (p *statusSnap) dashboardBody(flat bool) splicedBody {
	if flat {
		p.flatOnce.Do(func() { p.flat = spliceJSON(dashboard(&p.s, true)) })
		return p.flat
	}
	p.dashOnce.Do(func() { p.dash = spliceJSON(dashboard(&p.s, false)) })
	return p.dash
}

// dashboardGzip returns the full dashboard of p compressed around its
// request id, compressing it on first use; ok is false when it is too
// small to be worth it or could not be compressed.
func (p *statusSnap) dashboardGzip() (gzipBody, bool) {
	p.gzOnce.Do(func() {
		b := p.dashboardBody(false)
		if len(b.head)+len(b.tail) >= gzipMin {
			p.gz, p.gzOK = gzipSpliced(b)
		}
	})
	return p.gz, p.gzOK
}

// ridMarker stands for the request id while a body is encoded; the
// encoder escapes the NULs, so no string value can contain its encoding
// next to the key (inside a string every quote is escaped).
const ridMarker = "\x00wactl-request-id\x00"

// spliceJSON encodes body as WriteJSON does (success true, HTML escaping,
// trailing newline) and cuts out the request id's value.
func spliceJSON(body map[string]any) splicedBody {
	body["success"] = true
	body["requestId"] = ridMarker
	var buf bytes.Buffer
	_ = json.NewEncoder(&buf).Encode(body)
	out := buf.Bytes()
	key := []byte(`"requestId":`)
	marker, _ := json.Marshal(ridMarker)
	i := bytes.Index(out, append(key, marker...))
	if i < 0 {
		// Cannot happen (the key is top-level and sorted in); answer
		// without an id rather than a broken body.
		return splicedBody{head: []byte(`{"success":false,"requestId":`), tail: []byte(`,"error":"dashboard_encoding"}` + "\n")}
	}
	head := i + len(key)
	return splicedBody{head: out[:head:head], tail: out[head+len(marker):]}
}

// statusVersion changes with every account state change (statusWriter.mark).
func (m *Manager) statusVersion() uint64 { return m.status.version.Load() }
