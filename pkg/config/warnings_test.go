package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func warningTexts(l *Loaded) string {
	var out []string
	for _, w := range l.Warnings {
		out = append(out, w.String())
	}
	return strings.Join(out, "\n")
}

// TestShortServiceTokenIsRefused is issue 16 item 5: a guessable service
// token (it acts as admin) is a configuration error.
func TestShortServiceTokenIsRefused(t *testing.T) {
	got := strings.Join(problems(t, opts(env("WACTL_API_SERVICE_TOKEN", "secret"), nil)), "\n")
	if !strings.Contains(got, "api.service_token: is 6 characters; use at least 32") {
		t.Fatalf("short token accepted or unclear: %s", got)
	}
	if strings.Contains(got, "secret\"") || strings.Contains(got, ": secret") {
		t.Fatalf("the problem shows the token: %s", got)
	}
	got = strings.Join(problems(t, opts(env("WACTL_HTTP_STATUS_TOKEN", "short"), nil)), "\n")
	if !strings.Contains(got, "http.status_token: is 5 characters; use at least 32") {
		t.Fatalf("short status token: %s", got)
	}
	mustLoad(t, opts(env("WACTL_API_SERVICE_TOKEN", strings.Repeat("k", 32)), nil))
}

// TestEmptyTokenFileWarns: an empty secret file leaves the key unset; say so.
func TestEmptyTokenFileWarns(t *testing.T) {
	l := mustLoad(t, opts(env("WACTL_API_SERVICE_TOKEN_FILE", "/run/creds/token"), map[string]string{"/run/creds/token": "\n"}))
	if w := warningTexts(l); !strings.Contains(w, "api.service_token (WACTL_API_SERVICE_TOKEN_FILE): /run/creds/token is empty") {
		t.Fatalf("no warning about the empty token file: %q", w)
	}
}

// TestInlineSecretInReadableConfigWarns: a secret written in a config file
// that group or others can read.
func TestInlineSecretInReadableConfigWarns(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "config.yaml")
	body := "api:\n  service_token: " + strings.Repeat("s", 40) + "\n"
	if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	o := realOpts(env())
	o.ConfigFile = file
	l := mustLoad(t, o)
	w := warningTexts(l)
	if !strings.Contains(w, "api.service_token ("+file+"): a secret in a file other users can read (mode 0644)") ||
		!strings.Contains(w, "chmod 600 "+file) {
		t.Fatalf("no warning about the readable secret: %q", w)
	}
	if strings.Contains(w, strings.Repeat("s", 40)) {
		t.Fatalf("the warning shows the secret: %q", w)
	}
	if err := os.Chmod(file, 0o600); err != nil {
		t.Fatal(err)
	}
	if w := warningTexts(mustLoad(t, o)); strings.Contains(w, "service_token") {
		t.Fatalf("a 0600 file must not warn: %q", w)
	}
}

// TestNoReaderAllowlistWarns is issue 16 item 6 (config side): with a
// Firebase project and no allowlist, every user of the project reads every
// conversation.
func TestNoReaderAllowlistWarns(t *testing.T) {
	l := mustLoad(t, opts(env("WACTL_API_FIREBASE_PROJECT_ID", "shop-prod"), nil))
	if w := warningTexts(l); !strings.Contains(w, "no reader allowlist") || !strings.Contains(w, "api.allowed_emails") {
		t.Fatalf("no allowlist warning: %q", w)
	}
	if len(ConfigWarnings(&l.Config)) == 0 {
		t.Fatal("ConfigWarnings (doctor's) misses the allowlist")
	}
	l = mustLoad(t, opts(env("WACTL_API_FIREBASE_PROJECT_ID", "shop-prod", "WACTL_API_ALLOWED_EMAILS", "a@shop.example"), nil))
	if w := warningTexts(l); strings.Contains(w, "allowlist") {
		t.Fatalf("allowlist set, still warned: %q", w)
	}
	l = mustLoad(t, opts(env("WACTL_API_FIREBASE_PROJECT_ID", "shop-prod", "WACTL_API_ALLOWED_EMAILS", "a@shop.example",
		"WACTL_API_ALLOW_ANONYMOUS", "true", "WACTL_API_ALLOW_UNVERIFIED_EMAIL", "true"), nil))
	if w := warningTexts(l); !strings.Contains(w, "api.allow_anonymous") || !strings.Contains(w, "api.allow_unverified_email") {
		t.Fatalf("opened-up sign-ins not warned about: %q", w)
	}
	// No Firebase project: no Firebase users, nothing to warn about.
	if w := warningTexts(mustLoad(t, opts(env(), nil))); w != "" {
		t.Fatalf("defaults warn: %q", w)
	}
}

// TestUnknownKeyReportedOnce is issue 16 item 11: each unknown key once,
// with its line, not again as the decoder's raw text.
func TestUnknownKeyReportedOnce(t *testing.T) {
	got := problems(t, opts(env(), map[string]string{"/etc/wactl/config.yaml": "http:\n  prot: 80\ncolor: blue\n"}))
	all := strings.Join(got, "\n")
	if len(got) != 2 || strings.Count(all, "prot") != 1 || strings.Count(all, "color") != 1 || strings.Contains(all, "decode") {
		t.Fatalf("want each unknown key once:\n%s", all)
	}
}
