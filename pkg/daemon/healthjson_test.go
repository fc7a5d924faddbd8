package daemon

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// awkwardStrings are what encoding/json escapes or rewrites: control
// characters, quotes, HTML, invalid and truncated UTF-8, JSONP separators.
var awkwardStrings = []string{
	"", "plain", `"quoted"`, `back\slash`, "<script>&amp;</script>", "tab\tnl\ncr\rbs\bff\f",
	"\x00\x01\x1f\x7f", "\u2028\u2029", "é ü ß 漢字 🙂", "\xff\xfe", "\xe2\x82", "a\xc0\xafb", "\xed\xa0\x80",
	"\ufffd", "end\\", strings.Repeat("x", 300), "mixed <\x00\u2028\xff>",
}

var awkwardTimes = []time.Time{
	{}, time.Unix(0, 0), time.Unix(0, 999_999_999), time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC),
	time.Date(2026, 3, 29, 2, 30, 0, 123_456_789, time.FixedZone("CEST", 2*3600)),
	time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC),
	time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-1, 6, 1, 0, 0, 0, 0, time.UTC),
	time.Date(0, 1, 1, 0, 0, 0, 0, time.FixedZone("x", -3600)), time.Now(),
}

var awkwardInts = []int64{0, 1, -1, 42, math.MaxInt64, math.MinInt64, math.MaxInt32, math.MinInt32}

func randString(r *rand.Rand) string {
	if r.IntN(3) == 0 {
		return awkwardStrings[r.IntN(len(awkwardStrings))]
	}
	b := make([]byte, r.IntN(40))
	for i := range b {
		switch r.IntN(4) {
		case 0:
			b[i] = byte(r.IntN(0x20)) // control characters
		case 1:
			b[i] = byte(0x80 + r.IntN(0x80)) // UTF-8 pieces, valid or not
		default:
			b[i] = byte(0x20 + r.IntN(0x60))
		}
	}
	if r.IntN(4) == 0 {
		return string(b) + string([]rune{'\u2028', '\u2029', 'é', '🙂', utf8.RuneError}[r.IntN(5)])
	}
	return string(b)
}

func randInt(r *rand.Rand) int64 {
	if r.IntN(2) == 0 {
		return awkwardInts[r.IntN(len(awkwardInts))]
	}
	return r.Int64() - r.Int64()
}

func randTime(r *rand.Rand) time.Time {
	if r.IntN(2) == 0 {
		return awkwardTimes[r.IntN(len(awkwardTimes))]
	}
	// Years about -300 to 12,000, with zones east and west.
	t := time.Unix(r.Int64N(400_000_000_000)-72_000_000_000, r.Int64N(1e9))
	return t.In(time.FixedZone("z", (r.IntN(49)-24)*1800))
}

func randHealthBody(r *rand.Rand) *healthBody {
	var warn []string
	switch r.IntN(3) {
	case 1:
		warn = []string{}
	case 2:
		for n := 1 + r.IntN(4); n > 0; n-- {
			warn = append(warn, randString(r))
		}
	}
	return &healthBody{
		meta: meta{Success: r.IntN(2) == 0, RequestID: randString(r)},
		OK:   r.IntN(2) == 0, Status: randString(r), Service: randString(r), Version: randString(r),
		Commit: randString(r), InstanceID: randString(r), WAMode: randString(r), LockStatus: randString(r),
		LockHolder: randString(r), LockRemainingSec: randInt(r), LockEpoch: randInt(r), Uptime: randInt(r),
		Timestamp: jsonMillis(randTime(r)), AccountsTotal: int(randInt(r)), Connected: int(randInt(r)),
		NeedsQR: int(randInt(r)), SessionsDirWritable: r.IntN(2) == 0,
		Dedupe: dedupeJSON{randInt(r), randInt(r), randInt(r)},
		History: historyJSON{randInt(r), randInt(r), jsonMillis(randTime(r)), int(randInt(r)),
			int(randInt(r)), int(randInt(r)), int(randInt(r)), randInt(r)},
		Store:    storeJSON{randString(r), r.IntN(2) == 0, int(randInt(r)), randInt(r), int(randInt(r))},
		Warnings: warn,
	}
}

func checkHealthJSON(t *testing.T, b *healthBody) {
	t.Helper()
	want, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if got := appendHealthJSON(nil, b); !bytes.Equal(got, want) {
		t.Fatalf("append encoder differs from encoding/json\n got %s\nwant %s", got, want)
	}
}

func TestHealthJSONMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(7, 11))
	for i := 0; i < 5000; i++ {
		checkHealthJSON(t, randHealthBody(r))
	}
	// Every single byte and every awkward string in every string field.
	var all []string
	for c := 0; c < 256; c++ {
		all = append(all, string([]byte{byte(c)}), "a"+string([]byte{byte(c)})+"b")
	}
	all = append(all, awkwardStrings...)
	for _, s := range all {
		b := randHealthBody(r)
		b.RequestID, b.Status, b.Commit, b.LockHolder, b.Store.Backend, b.Warnings = s, s, s, s, s, []string{s, s}
		checkHealthJSON(t, b)
	}
}

// jsonMillis replaced the string ms() returned in an interface: the wire
// form must not have changed.
func TestMillisMatchesMs(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(3, 5))
	times := append([]time.Time{}, awkwardTimes...)
	for i := 0; i < 5000; i++ {
		times = append(times, randTime(r))
	}
	for _, tm := range times {
		want, _ := json.Marshal(ms(tm))
		got, err := json.Marshal(jsonMillis(tm))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%v: json %s (%v), want %s", tm, got, err, want)
		}
		if got := appendMillis(nil, tm); !bytes.Equal(got, want) {
			t.Fatalf("%v: appendMillis %s, want %s", tm, got, want)
		}
	}
}

// The served body is what the previous implementation wrote for the same
// snapshot: json.NewEncoder(w).Encode of the body, newline included.
func TestHealthWireMatchesEncoder(t *testing.T) {
	t.Parallel()
	for _, mk := range []func() Status{
		sampleStatus,
		func() Status { s := sampleStatus(); s.Accounts = nil; return s },
		func() Status {
			s := sampleStatus()
			s.SessionsDirWritable, s.StoreReachable, s.StoreError = false, false, "dial <tcp> \"x\"\n"
			s.LockRenewalError, s.SessionsPath = "deadline\u2028exceeded", "/var/lib/wactl/s\xffessions"
			s.Totals.HistoryLastRunAt, s.Totals.HistoryLastBatch = s.Now.Add(-time.Minute), 50
			return s
		},
	} {
		s := mk()
		h := NewHandler(HandlerOptions{Status: func() Status { return s }})
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/health", nil)
		req.Header.Set("X-Request-ID", "req-<7>")
		h.ServeHTTP(rec, req)

		var b healthBody
		code := newHealthBody(&s, &b)
		b.RequestID = "req-<7>"
		var want bytes.Buffer
		_ = json.NewEncoder(&want).Encode(&b)
		if rec.Code != code || rec.Body.String() != want.String() {
			t.Fatalf("served %d %s\nwant %d %s", rec.Code, rec.Body, code, want.String())
		}
		if got := rec.Header().Get("X-Request-ID"); got != "req-<7>" {
			t.Fatalf("X-Request-ID %q", got)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
			t.Fatalf("Content-Type %q", ct)
		}
	}
}

// Pooled buffers and the shared per-request state must never mix two
// answers: under concurrency each body carries its own request's id, the
// same one as its header.
func TestHealthConcurrentBodiesStayApart(t *testing.T) {
	t.Parallel()
	srv := serve(t, sampleStatus)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	var wg sync.WaitGroup
	errs := make(chan error, 400)
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				req, _ := http.NewRequest("GET", srv.URL+"/health", nil)
				sent := ""
				if i%2 == 0 {
					sent = fmt.Sprintf("g%d-i%d", g, i)
					req.Header.Set("X-Request-ID", sent)
				}
				resp, err := client.Do(req)
				if err != nil {
					errs <- err
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				var m map[string]any
				if err := json.Unmarshal(body, &m); err != nil {
					errs <- fmt.Errorf("not JSON: %v: %q", err, body)
					return
				}
				hdr := resp.Header.Get("X-Request-ID")
				if m["requestId"] != hdr || hdr == "" || (sent != "" && hdr != sent) {
					errs <- fmt.Errorf("sent %q, header %q, body %v", sent, hdr, m["requestId"])
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// Generated ids are unique, and the internal header cannot be forged.
func TestRequestIDs(t *testing.T) {
	t.Parallel()
	h := NewHandler(HandlerOptions{Status: sampleStatus})
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/healthz", nil)
		req.Header.Set(ridHeader, "forged")
		h.ServeHTTP(rec, req)
		id := rec.Header().Get("X-Request-ID")
		if !validRequestID(id) || seen[id] || id == "forged" || RequestID(req) != id {
			t.Fatalf("id %q (seen %v), RequestID %q", id, seen[id], RequestID(req))
		}
		seen[id] = true
	}
}

// The cached observers count each route and code apart.
func TestHTTPMetricsByRouteAndCode(t *testing.T) {
	t.Parallel()
	writable := true
	var mu sync.Mutex
	srv := serve(t, func() Status {
		mu.Lock()
		defer mu.Unlock()
		s := sampleStatus()
		s.SessionsDirWritable = writable
		return s
	})
	for i := 0; i < 3; i++ {
		getJSON(t, srv.URL+"/health", nil)
	}
	mu.Lock()
	writable = false
	mu.Unlock()
	getJSON(t, srv.URL+"/health", nil)
	getJSON(t, srv.URL+"/healthz", nil)
	getJSON(t, srv.URL+"/healthz", nil)
	getJSON(t, srv.URL+"/nope", nil)
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`wactl_http_request_duration_seconds_count{code="200",route="GET /health"} 3`,
		`wactl_http_request_duration_seconds_count{code="503",route="GET /health"} 1`,
		`wactl_http_request_duration_seconds_count{code="200",route="GET /healthz"} 2`,
		`wactl_http_request_duration_seconds_count{code="404",route="/"} 1`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func FuzzHealthJSON(f *testing.F) {
	for i, s := range awkwardStrings {
		f.Add(s, awkwardStrings[(i+1)%len(awkwardStrings)], awkwardInts[i%len(awkwardInts)], int64(i)*1e17, int64(i)*7e8, uint8(i))
	}
	f.Fuzz(func(t *testing.T, s1, s2 string, n, sec, nsec int64, flags uint8) {
		tm := time.Unix(sec%(1<<40), nsec).In(time.FixedZone("z", int(flags)*900-36000))
		var warn []string
		switch flags % 3 {
		case 1:
			warn = []string{}
		case 2:
			warn = []string{s1, s2, s1 + s2}
		}
		b := &healthBody{
			meta: meta{Success: flags&1 != 0, RequestID: s1},
			OK:   flags&2 != 0, Status: s2, Service: s1, Version: s2, Commit: s1 + s2, InstanceID: s2,
			WAMode: s1, LockStatus: s2, LockHolder: s1, LockRemainingSec: n, LockEpoch: -n, Uptime: sec,
			Timestamp: jsonMillis(tm), AccountsTotal: int(n), Connected: int(nsec), NeedsQR: int(flags),
			SessionsDirWritable: flags&4 != 0, Dedupe: dedupeJSON{n, sec, nsec},
			History: historyJSON{sec, n, jsonMillis(time.Unix(n%(1<<40), sec%1e9)), int(-n),
				int(n), int(sec), int(nsec), -n},
			Store:    storeJSON{s2, flags&8 != 0, int(nsec), n, int(n)},
			Warnings: warn,
		}
		if flags&16 != 0 {
			b.Timestamp = jsonMillis{}
		}
		checkHealthJSON(t, b)
	})
}
