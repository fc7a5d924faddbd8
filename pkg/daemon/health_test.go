package daemon

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func sampleStatus() Status {
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	return Status{
		Now: now, StartedAt: now.Add(-90 * time.Second), Service: "wactl", Version: "v1", Commit: "abc",
		InstanceID: "web-1", WAMode: "active", LockStatus: "held_by_this_instance", LockHolder: "web-1",
		LockRemaining: 17 * time.Second, LeaseUntil: now.Add(17 * time.Second), LockEpoch: 4,
		SessionsPath: "/var/lib/wactl/sessions", SessionsDirWritable: true, StoreBackend: "embedded", StoreReachable: true,
		Accounts: []AccountStatus{
			{ID: "account_prod_a", Phone: "+40712345678", State: "connected", HasDiskSession: true, ReconnectCount: 2},
			{ID: "account_prod_b", Phone: "+40700000001", State: "needs_qr"},
			{ID: "account_prod_c", Phone: "+40700000002", State: "connected", HasDiskSession: true, IsStale: true},
		},
		Totals: Counters{DedupeWrote: 10, DedupeSkipped: 3},
	}
}

func serve(t *testing.T, s func() Status) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(NewHandler(HandlerOptions{Status: s}))
	t.Cleanup(srv.Close)
	return srv
}

func getJSON(t *testing.T, url string, hdr map[string]string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("%s: not JSON: %v", url, err)
	}
	return resp.StatusCode, m
}

func TestHealthContractFields(t *testing.T) {
	srv := serve(t, sampleStatus)
	code, m := getJSON(t, srv.URL+"/health", map[string]string{"X-Request-ID": "req-42"})
	if code != 200 {
		t.Fatalf("code %d", code)
	}
	for _, k := range []string{"ok", "status", "service", "version", "commit", "instanceId", "waMode", "lockStatus",
		"lockHolder", "lockRemainingSec", "uptime", "timestamp", "accounts_total", "connected", "needs_qr",
		"sessions_dir_writable", "dedupe", "history", "success", "requestId"} {
		if _, ok := m[k]; !ok {
			t.Errorf("/health lacks %s", k)
		}
	}
	if m["accounts_total"] != 3.0 || m["connected"] != 2.0 || m["needs_qr"] != 1.0 || m["requestId"] != "req-42" {
		t.Fatalf("%v", m)
	}
	if m["status"] != "degraded" || m["uptime"] != 90.0 || m["lockRemainingSec"] != 17.0 {
		t.Fatalf("stale account must degrade: %v %v %v", m["status"], m["uptime"], m["lockRemainingSec"])
	}
	d := m["dedupe"].(map[string]any)
	if d["wrote"] != 10.0 || d["skipped"] != 3.0 || d["strongSkipped"] != 0.0 {
		t.Fatalf("dedupe %v", d)
	}
}

func TestHealth503WhenSessionsNotWritable(t *testing.T) {
	srv := serve(t, func() Status { s := sampleStatus(); s.SessionsDirWritable = false; return s })
	code, m := getJSON(t, srv.URL+"/health", nil)
	if code != 503 || m["sessions_dir_writable"] != false || m["ok"] != false {
		t.Fatalf("%d %v", code, m)
	}
	code, _ = getJSON(t, srv.URL+"/readyz", nil)
	if code != 503 {
		t.Fatalf("readyz %d", code)
	}
	code, m = getJSON(t, srv.URL+"/ready", nil)
	if code != 200 || m["ready"] != true {
		t.Fatalf("/ready always answers 200: %d %v", code, m)
	}
}

func TestReadyPassive(t *testing.T) {
	srv := serve(t, func() Status {
		s := sampleStatus()
		s.WAMode, s.LockStatus, s.LockHolder, s.PassiveReason = "passive", "held_by_other", "web-2", "lease held by web-2"
		return s
	})
	code, m := getJSON(t, srv.URL+"/ready", nil)
	if code != 200 || m["ready"] != false || m["mode"] != "passive" || m["heldBy"] != "web-2" || m["reason"] != "lease held by web-2" {
		t.Fatalf("%d %v", code, m)
	}
	for _, k := range []string{"instanceId", "lockStatus", "lockExpiresInSeconds", "timestamp"} {
		if _, ok := m[k]; !ok {
			t.Errorf("/ready lacks %s", k)
		}
	}
}

func TestDashboard(t *testing.T) {
	srv := serve(t, sampleStatus)
	code, m := getJSON(t, srv.URL+"/api/status/dashboard", nil)
	if code != 200 {
		t.Fatalf("%d", code)
	}
	accts := m["accounts"].([]any)
	a0 := accts[0].(map[string]any)
	if a0["phone"] != "+40*******78" || a0["hasDiskSession"] != true || a0["status"] != "connected" {
		t.Fatalf("%v", a0)
	}
	if m["accounts_count"] != 3.0 || m["storageWritable"] != true || m["total"] != 3.0 {
		t.Fatalf("flat fields: %v", m)
	}
	sum := m["summary"].(map[string]any)
	if sum["connected"] != 2.0 || sum["needs_qr"] != 1.0 {
		t.Fatalf("summary %v", sum)
	}
	_, flat := getJSON(t, srv.URL+"/api/status/dashboard?view=flat", nil)
	if flat["service"] != "degraded" || flat["accounts_count"] != 3.0 {
		t.Fatalf("flat view %v", flat)
	}
	// Through a proxy (not loopback) the dashboard needs the API's auth.
	code, _ = getJSON(t, srv.URL+"/api/status/dashboard", map[string]string{"X-Forwarded-For": "203.0.113.9"})
	if code != http.StatusUnauthorized {
		t.Fatalf("proxied dashboard: %d", code)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/api/status/dashboard", nil)
	req.RemoteAddr = "192.0.2.7:5555"
	NewHandler(HandlerOptions{Status: sampleStatus}).ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized || strings.Contains(rec.Body.String(), "account_prod_a") {
		t.Fatalf("remote dashboard leaked: %d %s", rec.Code, rec.Body)
	}
}

func TestMetrics(t *testing.T) {
	srv := serve(t, sampleStatus)
	getJSON(t, srv.URL+"/health", nil)
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`wactl_accounts{state="connected"} 2`, `wactl_accounts{state="needs_qr"} 1`, "wactl_lease_held 1",
		`wactl_reconnects_total{account="account_prod_a"} 2`, `wactl_http_request_duration_seconds_count{code="200",route="GET /health"} 1`,
		"wactl_journal_backlog_messages 0", "go_goroutines",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestHealthBurst is the seed audit's burst: 30 sequential and 1,000
// concurrent requests, all 200.
func TestHealthBurst(t *testing.T) {
	srv := serve(t, sampleStatus)
	for i := 0; i < 30; i++ {
		if code, _ := getJSON(t, srv.URL+"/health", nil); code != 200 {
			t.Fatalf("request %d: %d", i, code)
		}
	}
	var bad atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	for i := 0; i < 1000; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			resp, err := client.Get(srv.URL + "/health")
			if err != nil || resp.StatusCode != 200 {
				bad.Add(1)
			}
			if resp != nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d of 1000 concurrent requests failed", bad.Load())
	}
}

func TestStatusLineAndMask(t *testing.T) {
	s := sampleStatus()
	if got := statusLine(s); got != "2/3 connected, lease held, 1 need a QR" {
		t.Fatal(got)
	}
	s.LockStatus, s.LockHolder = "held_by_other", "web-2"
	if got := statusLine(s); !strings.Contains(got, "PASSIVE, lease held by web-2") {
		t.Fatal(got)
	}
	for in, want := range map[string]string{"": "", "+123": "+***", "+40712345678": "+40*******78"} {
		if got := MaskPhone(in); got != want {
			t.Errorf("MaskPhone(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestUnknownRouteAndBadRequestID(t *testing.T) {
	srv := serve(t, sampleStatus)
	code, m := getJSON(t, srv.URL+"/nope", map[string]string{"X-Request-ID": "bad id with spaces"})
	if code != 404 || m["success"] != false {
		t.Fatalf("%d %v", code, m)
	}
	if id, _ := m["requestId"].(string); id == "" || strings.Contains(id, " ") {
		t.Fatalf("request id not replaced: %q", id)
	}
}

// BenchmarkHealthHandler is /health through the full handler chain
// (request id, metrics, mux) against a bare handler writing a small JSON
// body, in the same run: the in-process part of bench/health.sh.
func BenchmarkHealthHandler(b *testing.B) {
	idle := sampleStatus()
	idle.Accounts = nil // what bench/health.sh measures: 0 accounts
	h := NewHandler(HandlerOptions{Status: func() Status { return idle }})
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"ok":true,"status":"ok"}` + "\n"))
	})
	for name, handler := range map[string]http.Handler{"wactl": h, "bare": bare} {
		b.Run(name, func(b *testing.B) {
			req := httptest.NewRequest("GET", "/health", nil)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				handler.ServeHTTP(httptest.NewRecorder(), req)
			}
		})
	}
}

// BenchmarkHealthHandlerLean is BenchmarkHealthHandler without the
// recorder's own costs (it clones the header map and buffers the body):
// like net/http's server, each request gets a fresh request and response
// header map, and the body goes nowhere. It isolates what the handler chain
// itself adds.
func BenchmarkHealthHandlerLean(b *testing.B) {
	idle := sampleStatus()
	idle.Accounts = nil
	h := NewHandler(HandlerOptions{Status: func() Status { return idle }})
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"ok":true,"status":"ok"}` + "\n"))
	})
	for _, c := range []struct {
		name    string
		handler http.Handler
	}{{"wactl", h}, {"bare", bare}} {
		b.Run(c.name, func(b *testing.B) {
			req := httptest.NewRequest("GET", "/health", nil)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				req.Header = make(http.Header, 1)
				w := &discardWriter{h: make(http.Header)}
				c.handler.ServeHTTP(w, req)
				if w.code != http.StatusOK || w.n == 0 {
					b.Fatalf("answer %d, %d bytes", w.code, w.n)
				}
			}
		})
	}
}

type discardWriter struct {
	h       http.Header
	code, n int
}

func (d *discardWriter) Header() http.Header { return d.h }

func (d *discardWriter) WriteHeader(code int) { d.code = code }

func (d *discardWriter) Write(p []byte) (int, error) {
	if d.code == 0 {
		d.code = http.StatusOK
	}
	d.n += len(p)
	return len(p), nil
}
