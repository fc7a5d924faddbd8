package doctor

import (
	"net/http"
	"strings"
	"testing"

	"github.com/wactl/wactl/pkg/api"
)

// Issue 22 item 1: doctor says plainly when the API refuses every caller
// because no authentication is configured, and how to give it one.
func TestAPIAuthNotConfigured(t *testing.T) {
	r := runCheck(t, testEnv(t, nil), "api.auth")
	wantStatus(t, r, Fail, "refuses every caller: no authentication is configured")
	if !strings.Contains(fixCommands(r), "WACTL_API_SERVICE_TOKEN_FILE") || !strings.Contains(strings.Join(r.Notes, " "), "692eef65") {
		t.Fatalf("fix %q notes %v", fixCommands(r), r.Notes)
	}
	r = runCheck(t, testEnv(t, map[string]string{"WACTL_API_SERVICE_TOKEN": "s3cret-token-value-0123456789abcdef0123456789"}), "api.auth")
	wantStatus(t, r, OK, "service token only")
	if strings.Contains(strings.Join(append(r.Notes, r.Summary), " "), "s3cret") || evidence(r, "service_token") != "set" {
		t.Fatalf("service token leaked or not seen: %+v", r)
	}
	r = runCheck(t, testEnv(t, map[string]string{"WACTL_API_FIREBASE_PROJECT_ID": "p"}), "api.auth")
	wantStatus(t, r, OK, "forward the app's Authorization header")
}

// The running daemon's answer counts too: doctor's configuration may not
// be the daemon's.
func TestAPIAuthDaemonRefusesEveryone(t *testing.T) {
	mux := http.NewServeMux()
	api.RegisterUnconfigured(mux) // what `wactl serve` registers without authentication
	env := daemonEnv(t, mux)
	env.Config.API.ServiceToken = "configured-here-only"
	r := runCheck(t, env, "api.auth")
	wantStatus(t, r, Fail, "running daemon refuses every /api/whatsapp call")
	if evidence(r, "unauthenticated_call") != "503 auth_not_configured" {
		t.Fatalf("evidence %v", r.Evidence)
	}
	ok := http.NewServeMux()
	ok.HandleFunc("/api/whatsapp/accounts", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(401)
		w.Write([]byte(`{"success":false,"error":"unauthorized"}`))
	})
	env = daemonEnv(t, ok)
	env.Config.API.ServiceToken = "x"
	wantStatus(t, runCheck(t, env, "api.auth"), OK, "service token only")
}
