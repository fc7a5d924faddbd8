package api

import (
	"errors"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Failed authentications are logged and throttled per client address
// (docs/security.md). The throttle answers 429 before any token check, so
// an address that keeps guessing learns nothing more, and the log stays
// bounded however fast the guesses come.

const (
	// DefaultAuthFailuresPerMinute is Options.AuthFailuresPerMinute's
	// default: far above an app retrying with an expired token, far below
	// a guesser.
	DefaultAuthFailuresPerMinute = 60
	authWindow                   = time.Minute
	// authLogBurst lines at once, then one per authLogEvery; the next line
	// after a pause says how many were left out.
	authLogEvery = time.Second
	authLogBurst = 10
	// maxTracked addresses; past it the oldest windows are forgotten first
	// (a flood of distinct addresses cannot grow memory without bound).
	maxTracked = 100_000
)

type failWindow struct {
	start time.Time
	n     int
}

type authGuard struct {
	perMin int
	now    func() time.Time
	addr   func(*http.Request) string

	mu         sync.Mutex
	windows    map[string]*failWindow
	swept      time.Time
	logs       *rate.Limiter
	suppressed int
}

func newAuthGuard(perMin int, now func() time.Time, addr func(*http.Request) string) *authGuard {
	if perMin == 0 {
		perMin = DefaultAuthFailuresPerMinute
	}
	if addr == nil {
		addr = remoteHost
	}
	return &authGuard{perMin: perMin, now: now, addr: addr, windows: map[string]*failWindow{},
		logs: rate.NewLimiter(rate.Every(authLogEvery), authLogBurst)}
}

// remoteHost is the connection's address without the port.
func remoteHost(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}

// clientAddr is the client's address: the connection's, or behind trusted
// proxies the right-most X-Forwarded-For address no trusted proxy holds
// (what a client writes further left is not believed).
func clientAddr(trusted []netip.Prefix) func(*http.Request) string {
	isTrusted := func(s string) bool {
		ip, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil {
			return false
		}
		ip = ip.Unmap()
		for _, p := range trusted {
			if p.Contains(ip) {
				return true
			}
		}
		return false
	}
	return func(r *http.Request) string {
		peer := remoteHost(r)
		if len(trusted) == 0 || !isTrusted(peer) {
			return peer
		}
		hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			h := strings.TrimSpace(hops[i])
			if _, err := netip.ParseAddr(h); err != nil {
				break // garbage: stop at the last address a proxy vouched for
			}
			if !isTrusted(h) {
				return h
			}
			peer = h
		}
		return peer
	}
}

// clientKey groups IPv6 addresses by /64 (one host usually holds a whole
// /64, so single addresses would be a free budget per guess).
func clientKey(addr string) string {
	ip := net.ParseIP(addr)
	if ip == nil {
		return addr
	}
	if v4 := ip.To4(); v4 != nil {
		return v4.String()
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

// blocked reports whether r's address is throttled, and for how long.
func (g *authGuard) blocked(r *http.Request) (bool, time.Duration) {
	if g.perMin < 0 {
		return false, 0
	}
	key := clientKey(g.addr(r))
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	w := g.windows[key]
	if w == nil || now.Sub(w.start) >= authWindow || w.n < g.perMin {
		return false, 0
	}
	return true, w.start.Add(authWindow).Sub(now)
}

// failed counts a failure of r's address and says whether to log it now
// (and how many lines were left out before it).
func (g *authGuard) failed(r *http.Request) (addr string, log bool, suppressed int) {
	addr = g.addr(r)
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.perMin >= 0 {
		g.sweep(now)
		key := clientKey(addr)
		w := g.windows[key]
		if w == nil || now.Sub(w.start) >= authWindow {
			w = &failWindow{start: now}
			g.windows[key] = w
		}
		w.n++
	}
	if !g.logs.AllowN(now, 1) {
		g.suppressed++
		return addr, false, 0
	}
	suppressed, g.suppressed = g.suppressed, 0
	return addr, true, suppressed
}

// sweep drops finished windows once a window, and the oldest ones when
// too many addresses are tracked; g.mu is held.
func (g *authGuard) sweep(now time.Time) {
	if now.Sub(g.swept) < authWindow && len(g.windows) < maxTracked {
		return
	}
	g.swept = now
	for k, w := range g.windows {
		if now.Sub(w.start) >= authWindow {
			delete(g.windows, k)
		}
	}
	if len(g.windows) >= maxTracked {
		g.windows = map[string]*failWindow{}
	}
}

// throttled answers 429 for a throttled address; true means answered.
func (a *API) throttled(w http.ResponseWriter, r *http.Request) bool {
	ok, wait := a.guard.blocked(r)
	if !ok {
		return false
	}
	secs := int(wait/time.Second) + 1
	w.Header().Set("Retry-After", itoa(secs))
	writeJSON(w, r, http.StatusTooManyRequests, map[string]any{"error": "too_many_auth_failures",
		"message": "too many failed authentications from this address; retry later with a valid token", "retryAfterSeconds": secs})
	return true
}

// authFailure logs and counts a failed authentication: the reason, the
// client address and the route, never the token.
func (a *API) authFailure(r *http.Request, err error) {
	if errors.Is(err, errKeysUnavailable) {
		return // the server's problem, logged by authFailed
	}
	addr, log, suppressed := a.guard.failed(r)
	if !log {
		return
	}
	reason := err.Error()
	if len(reason) > 200 {
		reason = reason[:200] + "…"
	}
	args := []any{"reason", reason, "remote", addr, "route", r.Pattern}
	if suppressed > 0 {
		args = append(args, "suppressed", suppressed)
	}
	a.log.Warn("authentication failed", args...)
}

// refusal is why a verified Firebase user may not use the API although
// the token is valid: anonymous sign-ins and unverified e-mails, unless
// allowed by configuration or the uid is named in the configuration.
func (a *API) refusal(p *principal) string {
	if p.Kind != "firebase" || slices.Contains(a.o.AdminUIDs, p.UID) || slices.Contains(a.o.AllowedUIDs, p.UID) {
		return ""
	}
	switch {
	case p.Anonymous && !a.o.AllowAnonymous:
		return "anonymous sign-ins may not use this API (config api.allow_anonymous)"
	case p.UnverifiedEmail && !a.o.AllowUnverifiedEmail:
		return "this user's e-mail address is not verified (config api.allow_unverified_email)"
	}
	return ""
}
