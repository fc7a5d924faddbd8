package daemon

import (
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// statusAccess decides who may read the status routes (the dashboard and
// /metrics): they name accounts, phones and counters, not conversations.
//
// A caller is local when it connects over loopback directly: not through a
// proxy. Through a proxy every client of the proxy would be "local", and a
// proxy on this host connects over loopback too, often without
// X-Forwarded-For (nginx's default). So a request counts as remote when
// its peer is a named proxy (http.trusted_proxies), when it carries a
// forwarding header, or when it speaks HTTP/1.0 (nginx's default to its
// upstream). Remote callers need the status token
// (http.status_token) or the API's auth.
type statusAccess struct {
	tokenHash      [32]byte
	hasToken       bool
	trustedProxies []netip.Prefix
	authorized     func(*http.Request) bool
}

func newStatusAccess(o HandlerOptions) *statusAccess {
	a := &statusAccess{trustedProxies: o.TrustedProxies, authorized: o.Authorized}
	if o.StatusToken != "" {
		a.tokenHash, a.hasToken = sha256.Sum256([]byte(o.StatusToken)), true
	}
	return a
}

func (a *statusAccess) allowed(r *http.Request) bool {
	if a.local(r) || a.tokenOK(r) {
		return true
	}
	return a.authorized != nil && a.authorized(r)
}

// tokenOK compares hashes in constant time, so neither the token nor its
// length leaks through timing.
func (a *statusAccess) tokenOK(r *http.Request) bool {
	if !a.hasToken {
		return false
	}
	v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || v == "" {
		return false
	}
	h := sha256.Sum256([]byte(strings.TrimSpace(v)))
	return subtle.ConstantTimeCompare(h[:], a.tokenHash[:]) == 1
}

// proxyHeaders mark a request that came through a proxy.
var proxyHeaders = []string{"X-Forwarded-For", "Forwarded", "X-Real-Ip", "Via", "X-Forwarded-Proto", "X-Forwarded-Host"}

func (a *statusAccess) local(r *http.Request) bool {
	for _, h := range proxyHeaders {
		if len(r.Header[h]) > 0 {
			return false
		}
	}
	// nginx's default proxy_pass speaks HTTP/1.0 to its upstream and adds
	// none of the headers above; local tools (curl, Go, Prometheus) speak
	// HTTP/1.1.
	if r.ProtoMajor == 1 && r.ProtoMinor == 0 {
		return false
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		return false
	}
	ip = ip.Unmap()
	for _, p := range a.trustedProxies {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// deny is the answer to a caller who may not read a status route; it says
// what would let them in, never what the route holds.
func deny(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="wactl status"`)
	WriteJSON(w, r, http.StatusUnauthorized, map[string]any{
		"error": "unauthorized",
		"message": "status routes need a bearer token (http.status_token or the API's) unless called " +
			"on loopback directly, not through a proxy",
	})
}
