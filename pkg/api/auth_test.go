package api

import (
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wactl/wactl/pkg/daemon"
)

func TestAuthRejects(t *testing.T) {
	e := newEnv(t)
	e.wa.addAccount("acc1", "+40722000111", daemon.StateQRReady)
	e.wa.setPairing("acc1", PairingState{QR: "2@secret-qr", IssuedAt: e.clk.Now()})
	now := e.clk.Now()
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	with := func(edit func(c map[string]any)) string {
		c := claimsFor("user-uid", now)
		edit(c)
		return sign(t, e.ks.key, e.ks.kid, c)
	}
	cases := []struct {
		name, token string
		code        int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"garbage", "not-a-jwt", http.StatusUnauthorized},
		{"garbage three parts", "a.b.c", http.StatusUnauthorized},
		{"wrong signature", sign(t, other, e.ks.kid, claimsFor("user-uid", now)), http.StatusUnauthorized},
		{"unknown kid", sign(t, e.ks.key, "other-kid", claimsFor("user-uid", now)), http.StatusUnauthorized},
		{"wrong project audience", with(func(c map[string]any) { c["aud"] = "other-project" }), http.StatusUnauthorized},
		{"wrong project issuer", with(func(c map[string]any) { c["iss"] = "https://securetoken.google.com/other-project" }), http.StatusUnauthorized},
		{"expired", with(func(c map[string]any) { c["exp"] = now.Add(-2 * time.Minute).Unix() }), http.StatusUnauthorized},
		{"issued in the future", with(func(c map[string]any) { c["iat"] = now.Add(time.Hour).Unix() }), http.StatusUnauthorized},
		{"auth_time in the future", with(func(c map[string]any) { c["auth_time"] = now.Add(time.Hour).Unix() }), http.StatusUnauthorized},
		{"no auth_time", with(func(c map[string]any) { delete(c, "auth_time") }), http.StatusUnauthorized},
		{"empty sub", with(func(c map[string]any) { c["sub"] = "" }), http.StatusUnauthorized},
		{"wrong service token", "svc-secret-tokeN", http.StatusUnauthorized},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.do("GET", "/api/whatsapp/accounts", c.token, nil)
			if r.code != c.code {
				t.Fatalf("status %d, want %d: %s", r.code, c.code, r.raw)
			}
			if _, leaked := r.body["accounts"]; leaked || strings.Contains(string(r.raw), "secret-qr") {
				t.Fatalf("rejected request got data: %s", r.raw)
			}
			if r.str("requestId") == "" || r.body["success"] != false {
				t.Fatalf("answer lacks success:false/requestId: %s", r.raw)
			}
		})
	}
	// Every rejected Firebase token was checked against one fetch of the
	// keys (cached per max-age; the unknown kid refetches at most once).
	if n := e.ks.fetches.Load(); n < 1 || n > 2 {
		t.Fatalf("%d key fetches, want 1 or 2", n)
	}
}

func TestAuthRoles(t *testing.T) {
	e := newEnv(t, func(o *Options, d *Deps) { o.AdminClaim = "admin" })
	e.wa.addAccount("acc1", "+40722000111", daemon.StateQRReady)
	e.wa.setPairing("acc1", PairingState{QR: "2@secret-qr", IssuedAt: e.clk.Now()})
	now := e.clk.Now()

	// A plain user reads the list without QR codes and with masked phones.
	r := e.do("GET", "/api/whatsapp/accounts", e.user, nil)
	if r.code != 200 || strings.Contains(string(r.raw), "data:image") || strings.Contains(string(r.raw), "40722000111") {
		t.Fatalf("user list: %d %s", r.code, r.raw)
	}
	// …and every admin route answers 403 without data.
	for _, rt := range [][2]string{
		{"GET", "/api/whatsapp/qr/acc1"}, {"DELETE", "/api/whatsapp/accounts/acc1"},
		{"POST", "/api/whatsapp/accounts/acc1/reset"}, {"POST", "/api/whatsapp/regenerate-qr/acc1"},
		{"POST", "/api/whatsapp/send-message"}, {"POST", "/api/whatsapp/add-account"},
		{"POST", "/api/whatsapp/disconnect/acc1"}, {"PATCH", "/api/whatsapp/accounts/acc1/name"},
	} {
		r := e.do(rt[0], rt[1], e.user, map[string]any{"name": "x"})
		if r.code != http.StatusForbidden || strings.Contains(string(r.raw), "secret-qr") || strings.Contains(string(r.raw), "data:image") {
			t.Errorf("%s %s as user: %d %s", rt[0], rt[1], r.code, r.raw)
		}
	}
	if got := len(e.wa.calls); got != 0 {
		t.Fatalf("forbidden requests reached the daemon: %v", e.wa.calls)
	}

	// Admin by UID, by custom claim, and the service token see the QR.
	claim := claimsFor("claim-admin", now)
	claim["admin"] = true
	unverified := claimsFor("x-uid", now)
	unverified["email_verified"] = false
	for name, tok := range map[string]string{"uid": e.admin, "claim": sign(t, e.ks.key, e.ks.kid, claim), "service": e.svc} {
		r := e.do("GET", "/api/whatsapp/accounts", tok, nil)
		if r.code != 200 || !strings.Contains(string(r.raw), "data:image/png;base64,") || !strings.Contains(string(r.raw), "+40722000111") {
			t.Errorf("%s admin list: %d %s", name, r.code, r.raw)
		}
	}
}

func TestAuthEmailsAndAllowlist(t *testing.T) {
	e := newEnv(t, func(o *Options, d *Deps) {
		o.AdminEmails = []string{"Boss@Example.com"}
		o.AllowedUIDs = []string{"reader-uid"}
	})
	e.wa.addAccount("acc1", "+40722000111", daemon.StateConnected)
	now := e.clk.Now()
	boss := claimsFor("boss", now)
	boss["email"] = "boss@example.com"
	bossUnverified := claimsFor("boss2", now)
	bossUnverified["email"], bossUnverified["email_verified"] = "boss@example.com", false

	tok := func(c map[string]any) string { return sign(t, e.ks.key, e.ks.kid, c) }
	if r := e.do("GET", "/api/whatsapp/qr/acc1", tok(boss), nil); r.code != http.StatusNotFound {
		t.Fatalf("admin by verified email: %d (want the 404 page: no QR)", r.code)
	}
	if r := e.do("GET", "/api/whatsapp/qr/acc1", tok(bossUnverified), nil); r.code != http.StatusForbidden {
		t.Fatalf("unverified email counted as admin: %d", r.code)
	}
	if r := e.do("GET", "/api/whatsapp/accounts", tok(claimsFor("reader-uid", now)), nil); r.code != 200 {
		t.Fatalf("allowlisted reader: %d", r.code)
	}
	if r := e.do("GET", "/api/whatsapp/accounts", e.user, nil); r.code != http.StatusForbidden {
		t.Fatalf("user outside the allowlist: %d %s", r.code, r.raw)
	}
}

func TestAuthKeysUnavailable(t *testing.T) {
	e := newEnv(t)
	e.ks.down.Store(true)
	r := e.do("GET", "/api/whatsapp/accounts", e.user, nil)
	if r.code != http.StatusServiceUnavailable || r.str("error") != "auth_unavailable" {
		t.Fatalf("keys down: %d %s", r.code, r.raw)
	}
	// The service token does not depend on Google.
	if r := e.do("GET", "/api/whatsapp/accounts", e.svc, nil); r.code != 200 {
		t.Fatalf("service token with keys down: %d", r.code)
	}
	// Keys back: verification works without waiting for a cache period.
	e.ks.down.Store(false)
	e.clk.Add(minRefetch)
	if r := e.do("GET", "/api/whatsapp/accounts", e.user, nil); r.code != 200 {
		t.Fatalf("keys back: %d %s", r.code, r.raw)
	}
}

func TestKeyCacheHonoursMaxAge(t *testing.T) {
	e := newEnv(t)
	for i := 0; i < 20; i++ {
		if r := e.do("GET", "/api/whatsapp/accounts", e.user, nil); r.code != 200 {
			t.Fatalf("%d", r.code)
		}
	}
	if n := e.ks.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches within max-age, want 1", n)
	}
	e.clk.Add(time.Hour + time.Second)
	tok := sign(t, e.ks.key, e.ks.kid, claimsFor("user-uid", e.clk.Now()))
	if r := e.do("GET", "/api/whatsapp/accounts", tok, nil); r.code != 200 {
		t.Fatalf("%d", r.code)
	}
	// Past max-age the cached key still answers; the refresh runs beside it.
	waitIdle(t, e.api.auth.verifier.keys)
	if n := e.ks.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches after max-age, want 2", n)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	wa, st := newFakeWA(), newEnv(t).st
	for name, o := range map[string]Options{
		"no auth":        {},
		"http key url":   {ProjectID: "p", KeyURL: "http://example.com/keys"},
		"bad scheme url": {ProjectID: "p", KeyURL: "ftp://127.0.0.1/keys"},
	} {
		if _, err := New(o, Deps{WhatsApp: wa, Store: st}); err == nil {
			t.Errorf("%s: New accepted %+v", name, o)
		}
	}
	if _, err := New(Options{ProjectID: "p", KeyURL: "http://127.0.0.1:1/keys"}, Deps{WhatsApp: wa, Store: st}); err != nil {
		t.Errorf("loopback http key URL refused: %v", err)
	}
}
