package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Issue 22 item 1: a call without a credential is told the header and the
// credentials this configuration accepts (never data, never a secret).
func TestUnauthenticatedNamesWhatToSend(t *testing.T) {
	for _, c := range []struct {
		name    string
		opt     envOpt
		accepts string
		says    []string
	}{
		{"both", nil, "firebase_id_token,service_token", []string{"Firebase ID token", "service token"}},
		{"firebase only", func(o *Options, d *Deps) { o.ServiceToken = "" }, "firebase_id_token", []string{"Firebase ID token", "no service token"}},
		{"service only", func(o *Options, d *Deps) { o.ProjectID = "" }, "service_token", []string{"service token", "not accepted"}},
	} {
		var e *env
		if c.opt == nil {
			e = newEnv(t)
		} else {
			e = newEnv(t, c.opt)
		}
		for _, tok := range []string{"", "not-a-token"} {
			r := e.do("GET", "/api/whatsapp/accounts", tok, nil)
			var acc []string
			for _, x := range r.body["accepts"].([]any) {
				acc = append(acc, x.(string))
			}
			msg := r.str("message")
			if r.code != 401 || r.str("error") != "unauthorized" || r.str("header") != "Authorization" || r.str("scheme") != "Bearer" ||
				strings.Join(acc, ",") != c.accepts || !strings.Contains(msg, "Authorization: Bearer") || r.hdr.Get("WWW-Authenticate") == "" {
				t.Fatalf("%s, token %q: %d %s", c.name, tok, r.code, r.raw)
			}
			for _, s := range c.says {
				if !strings.Contains(msg, s) {
					t.Errorf("%s: message %q does not say %q", c.name, msg, s)
				}
			}
			if tok != "" && !strings.Contains(msg, "invalid token") {
				t.Errorf("%s: bad token not named: %q", c.name, msg)
			}
			if strings.Contains(string(r.raw), "svc-secret-token") || r.body["accounts"] != nil {
				t.Fatalf("%s: refused answer leaks: %s", c.name, r.raw)
			}
		}
	}
}

// With no credential configured every /api/whatsapp route answers 503
// auth_not_configured naming what the operator sets.
func TestUnconfiguredRefusesAndSaysWhy(t *testing.T) {
	mux := http.NewServeMux()
	RegisterUnconfigured(mux)
	for _, p := range []string{"/api/whatsapp/accounts", "/api/whatsapp/send-message", "/api/whatsapp/threads/x"} {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest("POST", p, nil))
		if w.Code != 503 || !strings.Contains(w.Body.String(), `"error":"auth_not_configured"`) ||
			!strings.Contains(w.Body.String(), "api.service_token") || !strings.Contains(w.Body.String(), "api.firebase_project_id") {
			t.Fatalf("%s: %d %s", p, w.Code, w.Body)
		}
	}
	if (Options{}).AuthSummary() != NoAuthMessage || !strings.Contains((Options{ProjectID: "p"}).AuthSummary(), "692eef65") {
		t.Fatal("startup summary")
	}
}
