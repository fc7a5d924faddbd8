package serve_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/watest"
)

// TestStatusRoutesNeedTheTokenBehindAListedProxy: issue 16 item 7 through
// the real command — with http.trusted_proxies naming loopback (nginx on
// this host, sending no X-Forwarded-For), the dashboard and /metrics need
// http.status_token; /health stays public.
func TestStatusRoutesNeedTheTokenBehindAListedProxy(t *testing.T) {
	const token = "status-0123456789abcdef0123456789abcdef"
	srv := wafake.Start(t)
	p := serve(t, srv, t.TempDir(), "WACTL_HTTP_TRUSTED_PROXIES=127.0.0.1,::1", "WACTL_HTTP_STATUS_TOKEN="+token)
	watest.Eventually(t, 20*time.Second, "/health", func() bool { return p.health() != nil })
	get := func(path, auth string) int {
		req, _ := http.NewRequest("GET", p.url+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, path := range []string{"/api/status/dashboard", "/metrics"} {
		if code := get(path, ""); code != http.StatusUnauthorized {
			t.Errorf("%s without a token through the listed proxy: %d", path, code)
		}
		if code := get(path, token); code != http.StatusOK {
			t.Errorf("%s with the status token: %d", path, code)
		}
	}
	if code := get("/health", ""); code != http.StatusOK {
		t.Errorf("/health: %d", code)
	}
}
