package api

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// signHeader makes a JWT with any header, signed RS256 by key (or, with
// hmacKey set, HS256 over hmacKey).
func signHeader(t testing.TB, key *rsa.PrivateKey, hdr, claims map[string]any, hmacKey []byte) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signing := enc(hdr) + "." + enc(claims)
	var sig []byte
	if hmacKey != nil {
		m := hmac.New(sha256.New, hmacKey)
		m.Write([]byte(signing))
		sig = m.Sum(nil)
	} else {
		sum := sha256.Sum256([]byte(signing))
		var err error
		if sig, err = rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:]); err != nil {
			t.Fatal(err)
		}
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// TestVerifierMakesEverySDKCheck: one case per check the Firebase Admin
// SDK for Go (firebase.google.com/go/v4 v4.21.0, auth/token_verifier.go
// VerifyToken and auth.go verifyIDToken) makes on an ID token, plus the
// ones wactl adds; docs/security.md has the table.
func TestVerifierMakesEverySDKCheck(t *testing.T) {
	ks := newKeyServer(t)
	now := time.Now().Truncate(time.Second)
	clk := func() time.Time { return now }
	v := &verifier{project: testProject, now: clk, skew: time.Minute,
		keys: &keyCache{url: ks.srv.URL, client: ks.srv.Client(), now: clk}}
	hdr := func() map[string]any { return map[string]any{"alg": "RS256", "kid": ks.kid, "typ": "JWT"} }
	good := claimsFor("u1", now)
	with := func(edit func(h, c map[string]any)) string {
		h, c := hdr(), claimsFor("u1", now)
		edit(h, c)
		return signHeader(t, ks.key, h, c, nil)
	}
	valid := signHeader(t, ks.key, hdr(), good, nil)
	if _, err := v.verify(context.Background(), valid); err != nil {
		t.Fatalf("valid token refused: %v", err)
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(valid, ".")
	padded := base64.URLEncoding.EncodeToString(must(json.Marshal(good)))
	if !strings.HasSuffix(padded, "=") {
		padded += "=="
	}
	pubPEM := []byte("-----BEGIN PUBLIC KEY-----") // an HS256 forger's guess at the secret
	for _, c := range []struct {
		sdk, name, token string
	}{
		{"token must be a non-empty string", "empty", ""},
		{"incorrect number of segments", "two segments", parts[0] + "." + parts[1]},
		{"incorrect number of segments", "four segments", valid + ".x"},
		{"segments are base64url without padding", "padded payload", parts[0] + "." + padded + "." + parts[2]},
		{"segments are base64url without padding", "standard alphabet", parts[0] + "." + strings.NewReplacer("-", "+", "_", "/").Replace(parts[1]) + "x+/." + parts[2]},
		{"header and payload are JSON", "payload not JSON", parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte("{not json")) + "." + parts[2]},
		{"has no 'kid' header", "no kid", with(func(h, c map[string]any) { delete(h, "kid") })},
		{"expected an ID token but got a custom token", "custom token", with(func(h, c map[string]any) {
			delete(h, "kid")
			c["aud"] = "https://identitytoolkit.googleapis.com/google.identity.identitytoolkit.v1.IdentityToolkit"
		})},
		{"invalid algorithm; expected 'RS256'", "alg none", strings.Join([]string{
			base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"` + ks.kid + `"}`)), parts[1], ""}, ".")},
		{"invalid algorithm; expected 'RS256'", "HS256 with a public key as secret", signHeader(t, nil,
			map[string]any{"alg": "HS256", "kid": ks.kid}, good, pubPEM)},
		{"invalid algorithm; expected 'RS256'", "RS512", with(func(h, c map[string]any) { h["alg"] = "RS512" })},
		{"invalid 'aud' (audience) claim", "other project", with(func(h, c map[string]any) { c["aud"] = "other" })},
		{"invalid 'aud' (audience) claim (the SDK's aud is a string)", "aud as an array", with(func(h, c map[string]any) { c["aud"] = []string{testProject} })},
		{"invalid 'aud' (audience) claim", "no aud", with(func(h, c map[string]any) { delete(c, "aud") })},
		{"invalid 'iss' (issuer) claim", "other issuer", with(func(h, c map[string]any) { c["iss"] = "https://securetoken.google.com/other" })},
		{"invalid 'iss' (issuer) claim", "session cookie issuer", with(func(h, c map[string]any) { c["iss"] = "https://session.firebase.google.com/" + testProject })},
		{"empty 'sub' (subject) claim", "empty sub", with(func(h, c map[string]any) { c["sub"] = "" })},
		{"empty 'sub' (subject) claim", "no sub", with(func(h, c map[string]any) { delete(c, "sub") })},
		{"'sub' (subject) claim longer than 128 characters", "long sub", with(func(h, c map[string]any) { c["sub"] = strings.Repeat("u", 129) })},
		{"issued at future timestamp", "iat in the future", with(func(h, c map[string]any) { c["iat"] = now.Add(10 * time.Minute).Unix() })},
		{"has expired", "expired", with(func(h, c map[string]any) { c["exp"] = now.Add(-10 * time.Minute).Unix() })},
		{"failed to verify token signature", "other key", signHeader(t, other, hdr(), good, nil)},
		{"failed to verify token signature", "payload changed after signing", parts[0] + "." + base64.RawURLEncoding.EncodeToString(must(json.Marshal(claimsFor("admin-uid", now)))) + "." + parts[2]},
		{"failed to verify token signature (kid not published)", "unknown kid", with(func(h, c map[string]any) { h["kid"] = "nope" })},
		{"invalid tenant id (tenant clients only; wactl takes no tenant)", "tenant token", with(func(h, c map[string]any) {
			c["firebase"] = map[string]any{"sign_in_provider": "password", "tenant": "tenant-1"}
		})},
		// wactl's own, stricter than the SDK:
		{"(wactl) skew of one minute instead of five", "expired 2 min ago", with(func(h, c map[string]any) { c["exp"] = now.Add(-2 * time.Minute).Unix() })},
		{"(wactl) exp required", "no exp", with(func(h, c map[string]any) { delete(c, "exp") })},
		{"(wactl) iat required", "no iat", with(func(h, c map[string]any) { delete(c, "iat") })},
		{"(wactl) auth_time required, not in the future", "no auth_time", with(func(h, c map[string]any) { delete(c, "auth_time") })},
		{"(wactl) auth_time required, not in the future", "auth_time in the future", with(func(h, c map[string]any) { c["auth_time"] = now.Add(time.Hour).Unix() })},
	} {
		if _, err := v.verify(context.Background(), c.token); err == nil {
			t.Errorf("%s (SDK: %s): accepted", c.name, c.sdk)
		}
	}
	// Project id not available: without one no Firebase token is accepted
	// (only the service token).
	e := newEnv(t, func(o *Options, d *Deps) { o.ProjectID = "" })
	if r := e.do("GET", "/api/whatsapp/accounts", e.user, nil); r.code != 401 {
		t.Errorf("no project configured: %d", r.code)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
