package daemon

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

// TestStatusRoutesBehindASameHostProxy is issue 16 item 7: a reverse proxy
// on this host (nginx's defaults: no X-Forwarded-For, no Forwarded) reaches
// the daemon over loopback. Listed in http.trusted_proxies, its requests
// need the status token (or the API's auth) for the dashboard and
// /metrics; a direct loopback caller that is not a listed proxy keeps
// access without one.
func TestStatusRoutesBehindASameHostProxy(t *testing.T) {
	const token = "status-token-0123456789abcdef0123"
	h := NewHandler(HandlerOptions{
		Status:         sampleStatus,
		StatusToken:    token,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
	})
	do := func(remote, path string, hdr map[string]string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", path, nil)
		req.RemoteAddr = remote
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	for _, path := range []string{"/api/status/dashboard", "/metrics"} {
		// The proxy sends neither header: still the proxy, so not local.
		if rec := do("127.0.0.1:40000", path, nil); rec.Code != http.StatusUnauthorized ||
			strings.Contains(rec.Body.String(), "account_prod_a") {
			t.Errorf("%s through a same-host proxy without a token: %d %.80s", path, rec.Code, rec.Body)
		}
		if rec := do("127.0.0.1:40000", path, map[string]string{"Authorization": "Bearer wrong"}); rec.Code != http.StatusUnauthorized {
			t.Errorf("%s with a wrong token: %d", path, rec.Code)
		}
		if rec := do("127.0.0.1:40000", path, map[string]string{"Authorization": "Bearer " + token}); rec.Code != http.StatusOK {
			t.Errorf("%s with the status token: %d", path, rec.Code)
		}
		if rec := do("203.0.113.9:5555", path, map[string]string{"Authorization": "Bearer " + token}); rec.Code != http.StatusOK {
			t.Errorf("%s remote with the status token: %d", path, rec.Code)
		}
		// ::1 is loopback but not a listed proxy: a local tool.
		if rec := do("[::1]:40000", path, nil); rec.Code != http.StatusOK {
			t.Errorf("%s from a local caller that is not a proxy: %d", path, rec.Code)
		}
		// A forwarding header marks a proxy even when it is not listed.
		if rec := do("[::1]:40000", path, map[string]string{"Forwarded": "for=198.51.100.1"}); rec.Code != http.StatusUnauthorized {
			t.Errorf("%s with Forwarded: %d", path, rec.Code)
		}
	}
	// Without a status token configured, no bearer value opens the routes.
	h = NewHandler(HandlerOptions{Status: sampleStatus})
	req := httptest.NewRequest("GET", "/api/status/dashboard", nil)
	req.RemoteAddr = "203.0.113.9:5555"
	req.Header.Set("Authorization", "Bearer ")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized {
		t.Fatalf("empty bearer with no status token: %d", rec.Code)
	}
}

// TestNginxDefaultProxyIsNotLocal: nginx's default proxy_pass speaks
// HTTP/1.0 to the upstream and adds no forwarding header; even with no
// http.trusted_proxies its requests are not taken as local.
func TestNginxDefaultProxyIsNotLocal(t *testing.T) {
	h := NewHandler(HandlerOptions{Status: sampleStatus})
	for name, mk := range map[string]func(*http.Request){
		"http/1.0": func(r *http.Request) { r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.0", 1, 0 },
		"via":      func(r *http.Request) { r.Header.Set("Via", "1.1 proxy") },
		"xfproto":  func(r *http.Request) { r.Header.Set("X-Forwarded-Proto", "https") },
		"xrealip":  func(r *http.Request) { r.Header.Set("X-Real-IP", "198.51.100.7") },
	} {
		req := httptest.NewRequest("GET", "/api/status/dashboard", nil)
		req.RemoteAddr = "127.0.0.1:40000"
		mk(req)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized {
			t.Errorf("%s: %d", name, rec.Code)
		}
	}
	req := httptest.NewRequest("GET", "/api/status/dashboard", nil)
	req.RemoteAddr = "127.0.0.1:40000"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("a local HTTP/1.1 caller: %d", rec.Code)
	}
}
