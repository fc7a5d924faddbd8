package api

import (
	"net/http"
	"strings"
)

// NoAuthMessage says why every /api/whatsapp call is refused when neither
// a Firebase project nor a service token is configured, and what the
// operator sets; the serve log, doctor and the refused answers use it.
const NoAuthMessage = "the app's API refuses every /api/whatsapp call: no authentication is configured. " +
	"Set api.service_token (WACTL_API_SERVICE_TOKEN_FILE=<file>) for the Cloud Functions, and/or " +
	"api.firebase_project_id for the signed-in users' Firebase ID tokens; then callers send " +
	"Authorization: Bearer <that credential> (docs/operations.md, \"Cloud Functions and the API\")"

// Credential names in the "accepts" field of a 401.
const (
	CredentialFirebase = "firebase_id_token"
	CredentialService  = "service_token"
)

// Accepts lists the credentials this configuration accepts.
func (o Options) Accepts() []string {
	var out []string
	if o.ProjectID != "" {
		out = append(out, CredentialFirebase)
	}
	if o.ServiceToken != "" {
		out = append(out, CredentialService)
	}
	return out
}

// CredentialHint names the header and the credentials this instance
// accepts, for the 401 body: the caller (often a Cloud Function written
// for the old, open service) learns exactly what to add.
func (o Options) CredentialHint() string {
	const fb = "the signed-in user's Firebase ID token (the Functions proxy forwards the app's Authorization header)"
	const svc = "wactl's service token (the Cloud Functions send it from a secret)"
	switch {
	case o.ProjectID != "" && o.ServiceToken != "":
		return "send the header Authorization: Bearer <credential>, the credential being " + fb + " or " + svc
	case o.ProjectID != "":
		return "send the header Authorization: Bearer <credential>, the credential being " + fb +
			"; this instance has no service token configured"
	case o.ServiceToken != "":
		return "send the header Authorization: Bearer <credential>, the credential being " + svc +
			"; Firebase ID tokens are not accepted here (api.firebase_project_id is not set)"
	}
	return NoAuthMessage
}

// unauthorized is the 401 of a request without a valid credential: what
// was wrong (reason, empty when nothing was sent) and what to send.
func (a *API) unauthorized(w http.ResponseWriter, r *http.Request, reason string) {
	msg := a.o.CredentialHint()
	if reason != "" {
		msg = reason + "; " + msg
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="wactl"`)
	writeJSON(w, r, http.StatusUnauthorized, map[string]any{"error": "unauthorized", "message": msg,
		"header": "Authorization", "scheme": "Bearer", "accepts": a.o.Accepts()})
}

// RegisterUnconfigured answers every /api/whatsapp route of an instance
// with no way to authenticate callers: 503 auth_not_configured naming
// what the operator sets, instead of a bare 404 that looks like a wrong
// URL to whoever reads the Cloud Functions' logs.
func RegisterUnconfigured(mux *http.ServeMux) {
	mux.HandleFunc("/api/whatsapp/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, r, http.StatusServiceUnavailable, map[string]any{"error": "auth_not_configured",
			"message": NoAuthMessage, "header": "Authorization", "scheme": "Bearer", "accepts": []string{}})
	})
}

// AuthSummary is the startup log's one line on who the API lets in.
func (o Options) AuthSummary() string {
	acc := o.Accepts()
	if len(acc) == 0 {
		return NoAuthMessage
	}
	s := "the app's API accepts Authorization: Bearer <" + strings.Join(acc, " | ") + ">"
	if o.ServiceToken == "" {
		s += "; a Functions proxy that forwards no ID token (the 692eef65 version) is refused: see docs/operations.md"
	}
	return s
}
