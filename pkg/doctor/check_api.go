package doctor

import (
	"context"
	"fmt"
	"net/http"
	"strings"
)

// checkAPIAuth says whether the app's API can let anyone in. With neither
// a Firebase project nor a service token it refuses every call, which is
// what a cutover under the 692eef65 Functions proxy (it strips
// Authorization and adds nothing) looks like from the app: every accounts
// screen, add and send fails.
func checkAPIAuth(ctx context.Context, env *Env) Result {
	var r Result
	if env.Config == nil {
		r.Status, r.Summary = Skip, "skipped: no configuration"
		return r
	}
	c := env.Config.API
	r.add("firebase_project_id", orDash(c.FirebaseProjectID))
	svc := "not set"
	if c.ServiceToken != "" {
		svc = "set"
	}
	r.add("service_token", svc)
	switch {
	case c.FirebaseProjectID == "" && c.ServiceToken == "":
		r.fail("the app's API refuses every caller: no authentication is configured (neither api.firebase_project_id nor api.service_token)")
		r.note("the Cloud Functions must send Authorization: Bearer <credential>; the 692eef65 proxy sends none and needs the change in docs/operations.md")
		r.fix(env.apiTokenFix())
	case c.ServiceToken == "":
		r.set(OK, "the API accepts the signed-in users' Firebase ID tokens only")
		r.note("the Functions proxy must forward the app's Authorization header (the 692eef65 version strips it) or the API needs a service token: docs/operations.md")
	case c.FirebaseProjectID == "":
		r.set(OK, "the API accepts the service token only")
		r.note("the app's direct calls (inbox with WHATSAPP_BACKEND_URL) carry Firebase ID tokens and are refused until api.firebase_project_id is set")
	default:
		r.set(OK, "the API accepts Firebase ID tokens and the service token")
	}
	if env.Offline || env.BaseURL == "" {
		return r
	}
	// What the running daemon answers a caller without a credential: its
	// configuration may differ from the one doctor reads.
	code, body, err := env.getJSON(ctx, "/api/whatsapp/accounts")
	switch {
	case err != nil && unreachable(err):
		r.add("daemon", "not listening")
	case err != nil && code == http.StatusNotFound:
		r.add("unauthenticated_call", "404")
		r.warn("the daemon has no /api/whatsapp routes (API off, or a wactl older than this doctor)")
	case err != nil:
		r.add("unauthenticated_call", errText(err))
	default:
		r.add("unauthenticated_call", fmt.Sprintf("%d %v", code, body["error"]))
		switch {
		case body["error"] == "auth_not_configured":
			r.fail("the running daemon refuses every /api/whatsapp call: it has no authentication configured")
			if len(r.Fixes) == 0 {
				r.fix(env.apiTokenFix())
			}
		case code == http.StatusUnauthorized:
			// Expected: authenticated API, and the answer names what to send.
		default:
			r.warn(fmt.Sprintf("the daemon answered a call without a credential with %d, not 401", code))
		}
	}
	return r
}

// apiTokenFix creates a service token readable only by root and hands it
// to the service through systemd's credentials (never in the unit file or
// the environment of other processes).
func (env *Env) apiTokenFix() Fix {
	unit := strings.TrimSuffix(env.Unit, ".service")
	if unit == "" {
		unit = "wactl"
	}
	return Fix{Summary: "give the API a service token for the Cloud Functions (and/or set api.firebase_project_id); then change the Functions as docs/operations.md shows", Commands: []string{
		"sudo install -d -m 0700 /etc/wactl",
		"sudo sh -c 'umask 077; openssl rand -hex 32 > /etc/wactl/api-token'",
		"sudo systemctl edit " + unit + "   # [Service] LoadCredential=api-token:/etc/wactl/api-token and Environment=WACTL_API_SERVICE_TOKEN_FILE=%d/api-token",
		"sudo systemctl restart " + unit,
		"firebase functions:secrets:set WACTL_SERVICE_TOKEN < /etc/wactl/api-token   # run where the Functions are deployed (copy the file there safely)",
	}}
}
