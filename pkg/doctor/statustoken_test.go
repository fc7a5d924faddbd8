package doctor

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

// TestDoctorSendsTheStatusToken: with http.trusted_proxies naming
// loopback, the daemon asks doctor for the status token like anyone else;
// doctor sends http.status_token when it is configured (issue 16 item 7).
func TestDoctorSendsTheStatusToken(t *testing.T) {
	const token = "status-0123456789abcdef0123456789abcdef"
	var got string
	env := daemonEnv(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Get("Authorization")
		w.Write([]byte(`{"total":0}`))
	}))
	env.HTTP = http.DefaultClient
	env.Config.HTTP.StatusToken = token
	if _, _, err := env.getJSON(context.Background(), "/api/status/dashboard"); err != nil {
		t.Fatal(err)
	}
	if got != "Bearer "+token {
		t.Fatalf("Authorization %q", got)
	}
	env.Config.HTTP.StatusToken = ""
	env.getJSON(context.Background(), "/api/status/dashboard")
	if strings.HasPrefix(got, "Bearer") {
		t.Fatalf("sent a bearer token with none configured: %q", got)
	}
}
