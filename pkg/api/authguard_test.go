package api

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wactl/wactl/pkg/daemon"
)

// syncBuf collects log output of concurrent handlers.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// lines are the JSON log records written so far.
func (s *syncBuf) lines(t testing.TB) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s.b.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func withLog(buf *syncBuf) envOpt {
	return func(o *Options, d *Deps) {
		d.Log = slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
}

// clientFromHeader lets a test speak from several client addresses.
func clientFromHeader(o *Options, d *Deps) {
	d.ClientAddr = func(r *http.Request) string {
		if a := r.Header.Get("X-Test-Client"); a != "" {
			return a
		}
		return "127.0.0.1"
	}
}

// Item 5: failed authentications were neither logged nor throttled (3,000
// guesses at 4,687/s, no log line). Now each failure is logged (reason,
// address, route; never the token) at a bounded rate.
func TestAuthFailuresLogged(t *testing.T) {
	var buf syncBuf
	e := newEnv(t, withLog(&buf), func(o *Options, d *Deps) { o.AuthFailuresPerMinute = -1 })
	secret := "guess-" + strings.Repeat("s", 40)
	for i := 0; i < 200; i++ {
		if r := e.do("GET", "/api/whatsapp/accounts", secret, nil); r.code != 401 {
			t.Fatalf("%d %s", r.code, r.raw)
		}
	}
	if strings.Contains(buf.String(), "guess-") {
		t.Fatal("a token reached the log")
	}
	var fails []map[string]any
	for _, l := range buf.lines(t) {
		if l["msg"] == "authentication failed" {
			fails = append(fails, l)
		}
	}
	if len(fails) == 0 || len(fails) > authLogBurst {
		t.Fatalf("%d failure lines for 200 failures at one instant, want 1..%d", len(fails), authLogBurst)
	}
	f := fails[0]
	if f["reason"] == nil || f["remote"] != "127.0.0.1" || f["route"] != "GET /api/whatsapp/accounts" || f["level"] != "WARN" {
		t.Fatalf("failure line %v", f)
	}
	// Later, one line says how many were not logged.
	e.clk.Add(time.Minute)
	e.do("GET", "/api/whatsapp/accounts", "", nil)
	last := buf.lines(t)
	l := last[len(last)-1]
	if l["msg"] != "authentication failed" || l["suppressed"] != float64(200-len(fails)) || l["reason"] != errNoToken.Error() {
		t.Fatalf("line after the burst %v", l)
	}
}

// Item 5: failures are throttled per client address: 429 after N in a
// minute, for that address only, until the minute has passed.
func TestAuthFailuresThrottled(t *testing.T) {
	e := newEnv(t, clientFromHeader, func(o *Options, d *Deps) { o.AuthFailuresPerMinute = 5 })
	get := func(tok, addr string) resp {
		return e.do("GET", "/api/whatsapp/accounts", tok, nil, "X-Test-Client", addr)
	}
	for i := 0; i < 5; i++ {
		if r := get("bad-token", "203.0.113.7"); r.code != 401 {
			t.Fatalf("failure %d: %d", i, r.code)
		}
	}
	r := get("bad-token", "203.0.113.7")
	if r.code != 429 || r.str("error") != "too_many_auth_failures" || r.hdr.Get("Retry-After") == "" {
		t.Fatalf("after 5 failures: %d %s", r.code, r.raw)
	}
	// The throttled address is refused before any token check, so guessing
	// learns nothing; other addresses are not affected.
	if r := get(e.user, "203.0.113.7"); r.code != 429 {
		t.Fatalf("valid token from the throttled address: %d", r.code)
	}
	if r := get(e.user, "203.0.113.8"); r.code != 200 {
		t.Fatalf("other address: %d %s", r.code, r.raw)
	}
	// IPv6 addresses of one /64 share a budget.
	for i := 0; i < 5; i++ {
		get("bad", "2001:db8:1:2::"+itoa(i+1))
	}
	if r := get(e.user, "2001:db8:1:2::ffff"); r.code != 429 {
		t.Fatalf("same /64: %d", r.code)
	}
	e.clk.Add(time.Minute)
	if r := get(e.user, "203.0.113.7"); r.code != 200 {
		t.Fatalf("a minute later: %d %s", r.code, r.raw)
	}
}

// Item 6: every Firebase user of the project could read every
// conversation, anonymous sign-ins included. Anonymous and unverified
// e-mail tokens are refused by default; options allow them.
func TestAuthRefusesAnonymousAndUnverified(t *testing.T) {
	anon := func(e *env) string {
		c := claimsFor("anon-uid", e.clk.Now())
		delete(c, "email")
		delete(c, "email_verified")
		c["firebase"] = map[string]any{"sign_in_provider": "anonymous", "identities": map[string]any{}}
		return sign(t, e.ks.key, e.ks.kid, c)
	}
	unverified := func(e *env) string {
		c := claimsFor("unverified-uid", e.clk.Now())
		c["email_verified"] = false
		c["firebase"] = map[string]any{"sign_in_provider": "password"}
		return sign(t, e.ks.key, e.ks.kid, c)
	}
	phone := func(e *env) string {
		c := claimsFor("phone-uid", e.clk.Now())
		delete(c, "email")
		delete(c, "email_verified")
		c["phone_number"] = "+40722000999"
		c["firebase"] = map[string]any{"sign_in_provider": "phone"}
		return sign(t, e.ks.key, e.ks.kid, c)
	}
	e := newEnv(t)
	e.wa.addAccount(readAcc, "+40720000000", daemon.StateConnected)
	for name, c := range map[string]struct {
		tok  string
		want string
	}{
		"anonymous":  {anon(e), "api.allow_anonymous"},
		"unverified": {unverified(e), "api.allow_unverified_email"},
	} {
		for _, path := range []string{"/api/whatsapp/accounts", "/api/whatsapp/threads/" + readAcc, "/api/whatsapp/inbox/" + readAcc} {
			r := e.do("GET", path, c.tok, nil)
			if r.code != 403 || !strings.Contains(r.str("message"), c.want) || r.body["accounts"] != nil {
				t.Errorf("%s %s: %d %s", name, path, r.code, r.raw)
			}
		}
		req, _ := http.NewRequest("GET", "/status/dashboard", nil)
		req.Header.Set("Authorization", "Bearer "+c.tok)
		if e.api.Authorized(req) {
			t.Errorf("%s may read the dashboard", name)
		}
	}
	if r := e.do("GET", "/api/whatsapp/accounts", phone(e), nil); r.code != 200 {
		t.Errorf("phone sign-in (no e-mail): %d %s", r.code, r.raw)
	}
	// Allowed by configuration, or by naming the uid.
	e2 := newEnv(t, func(o *Options, d *Deps) { o.AllowAnonymous, o.AllowUnverifiedEmail = true, true })
	for _, tok := range []string{anon(e2), unverified(e2)} {
		if r := e2.do("GET", "/api/whatsapp/accounts", tok, nil); r.code != 200 {
			t.Errorf("allowed by config: %d %s", r.code, r.raw)
		}
	}
	e3 := newEnv(t, func(o *Options, d *Deps) { o.AllowedUIDs = []string{"anon-uid"} })
	if r := e3.do("GET", "/api/whatsapp/accounts", anon(e3), nil); r.code != 200 {
		t.Errorf("anonymous uid on the allowlist: %d %s", r.code, r.raw)
	}
}

// Item 11: "outbox item retried later" was logged at INFO every 30 s per
// waiting item, with two component keys (api and outbox). Now the first
// retry of an item is INFO and later ones DEBUG, under one component.
func TestOutboxRetryLogQuiet(t *testing.T) {
	var buf syncBuf
	e := newEnv(t, withLog(&buf))
	e.wa.addAccount(sendAcc, "+40722000111", daemon.StateReconnecting)
	w := e.api.OutboxWorker(WorkerOptions{Claimer: "inst-a", Fence: func() (int64, bool) { return 1, true }})
	proxyEnqueue(t, e.st, reqID(40), "waiting", e.clk.Now())
	for i := 0; i < 4; i++ {
		if _, err := w.Poll(context.Background()); err != nil {
			t.Fatal(err)
		}
		e.clk.Add(31 * time.Second)
	}
	var levels []string
	for _, raw := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if !strings.Contains(raw, "retried later") {
			continue
		}
		if n := strings.Count(raw, `"component":`); n != 1 {
			t.Fatalf("%d component keys: %s", n, raw)
		}
		var m map[string]any
		_ = json.Unmarshal([]byte(raw), &m)
		if m["component"] != "outbox" {
			t.Fatalf("component %v", m["component"])
		}
		levels = append(levels, m["level"].(string))
	}
	if strings.Join(levels, ",") != "INFO,DEBUG,DEBUG,DEBUG" {
		t.Fatalf("retry lines at %v, want INFO then DEBUG", levels)
	}
}

// Behind a trusted proxy the throttle counts per forwarded client, and a
// client cannot pick its address by sending X-Forwarded-For itself.
func TestAuthThrottleBehindTrustedProxy(t *testing.T) {
	e := newEnv(t, func(o *Options, d *Deps) {
		o.AuthFailuresPerMinute = 3
		o.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	})
	via := func(tok, xff string) int {
		return e.do("GET", "/api/whatsapp/accounts", tok, nil, "X-Forwarded-For", xff).code
	}
	for i := 0; i < 3; i++ {
		via("bad", "198.51.100.1, 203.0.113.9")
	}
	if c := via(e.user, "203.0.113.9"); c != 429 {
		t.Fatalf("throttled client via the proxy: %d", c)
	}
	if c := via(e.user, "203.0.113.10"); c != 200 {
		t.Fatalf("another client via the same proxy: %d", c)
	}
	// The spoofed left part does not matter; the proxy-appended right part does.
	if c := via(e.user, "203.0.113.10, 203.0.113.9"); c != 429 {
		t.Fatalf("left part chosen: %d", c)
	}
	// Without trusted proxies the header is ignored.
	e2 := newEnv(t, func(o *Options, d *Deps) { o.AuthFailuresPerMinute = 3 })
	for i := 0; i < 3; i++ {
		e2.do("GET", "/api/whatsapp/accounts", "bad", nil, "X-Forwarded-For", "198.51.100."+itoa(i))
	}
	if c := e2.do("GET", "/api/whatsapp/accounts", e2.user, nil, "X-Forwarded-For", "198.51.100.99").code; c != 429 {
		t.Fatalf("X-Forwarded-For believed without a trusted proxy: %d", c)
	}
}

// The daemon asks Authorized for remote callers of the dashboard and
// /metrics: those failures are logged and throttled like the API's.
func TestAuthorizedFailuresCountToo(t *testing.T) {
	var buf syncBuf
	e := newEnv(t, withLog(&buf), func(o *Options, d *Deps) { o.AuthFailuresPerMinute = 3 })
	ask := func(tok string) bool {
		r, _ := http.NewRequest("GET", "http://wactl/api/status/dashboard", nil)
		r.RemoteAddr = "198.51.100.5:1234"
		r.Header.Set("Authorization", "Bearer "+tok)
		return e.api.Authorized(r)
	}
	if !ask(e.user) {
		t.Fatal("valid user refused")
	}
	for i := 0; i < 3; i++ {
		if ask("guess-" + itoa(i)) {
			t.Fatal("guess accepted")
		}
	}
	if ask(e.user) {
		t.Fatal("a throttled address was let in")
	}
	if !strings.Contains(buf.String(), `"remote":"198.51.100.5"`) || strings.Contains(buf.String(), "guess-") {
		t.Fatalf("log: %s", buf.String())
	}
}
