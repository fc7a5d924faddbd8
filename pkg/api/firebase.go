package api

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Token errors. errKeysUnavailable is the server's problem (503), the
// others the caller's (401).
var (
	errTokenMalformed  = errors.New("token is not a JWT")
	errTokenSignature  = errors.New("token signature does not verify")
	errTokenClaims     = errors.New("token claims rejected")
	errKeysUnavailable = errors.New("signing keys unavailable")
)

// claims are the Firebase ID token claims wactl reads.
type claims struct {
	Iss           string `json:"iss"`
	Aud           any    `json:"aud"` // a string, as the SDK requires
	Sub           string `json:"sub"`
	Exp           int64  `json:"exp"`
	Iat           int64  `json:"iat"`
	AuthTime      int64  `json:"auth_time"`
	Email         string `json:"email"`
	EmailVerified bool   `json:"email_verified"`
	Firebase      struct {
		SignInProvider string `json:"sign_in_provider"`
		Tenant         string `json:"tenant"`
	} `json:"firebase"`
	Extra map[string]any `json:"-"`
}

// verifier checks Firebase ID tokens as the Firebase Admin SDK for Go
// (VerifyIDToken) does — RS256 over Google's published certificates by
// kid, issuer and (string) audience of the project, sub of 1-128
// characters, iat and exp against the clock — and a little more strictly:
// one minute of skew instead of five, exp, iat and auth_time required, no
// tenant tokens. sdkparity_test.go has a case per check; docs/security.md
// the table. Kept hand-written: the SDK would add its Google API
// transport dependencies for one function, and its key cache drops the
// old keys when a refresh fails.
type verifier struct {
	project string
	keys    *keyCache
	now     func() time.Time
	skew    time.Duration
}

func (v *verifier) verify(ctx context.Context, token string) (*claims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, errTokenMalformed
	}
	var hdr struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}
	if err := decodeSegment(parts[0], &hdr); err != nil {
		return nil, errTokenMalformed
	}
	if hdr.Alg != "RS256" {
		return nil, fmt.Errorf("%w: alg %q, want RS256", errTokenSignature, hdr.Alg)
	}
	if hdr.Kid == "" {
		return nil, fmt.Errorf("%w: no kid", errTokenSignature)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, errTokenMalformed
	}
	var c claims
	var raw map[string]any
	if err := decodeSegment(parts[1], &c); err != nil {
		return nil, errTokenMalformed
	}
	if err := decodeSegment(parts[1], &raw); err != nil {
		return nil, errTokenMalformed
	}
	c.Extra = raw
	key, err := v.keys.key(ctx, hdr.Kid)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(key, crypto.SHA256, sum[:], sig); err != nil {
		return nil, errTokenSignature
	}
	if err := v.checkClaims(&c); err != nil {
		return nil, fmt.Errorf("%w: %v", errTokenClaims, err)
	}
	return &c, nil
}

func (v *verifier) checkClaims(c *claims) error {
	now := v.now()
	switch {
	case v.project == "":
		return errors.New("no Firebase project configured")
	case c.Iss != "https://securetoken.google.com/"+v.project:
		return fmt.Errorf("issuer %q is not project %q", c.Iss, v.project)
	case c.Aud != v.project:
		return fmt.Errorf("audience is not project %q", v.project)
	case c.Sub == "" || len(c.Sub) > 128:
		return errors.New("sub is empty or too long")
	case c.Exp == 0 || now.After(time.Unix(c.Exp, 0).Add(v.skew)):
		return errors.New("token expired")
	case c.Iat == 0 || time.Unix(c.Iat, 0).After(now.Add(v.skew)):
		return errors.New("token issued in the future")
	case c.AuthTime == 0 || time.Unix(c.AuthTime, 0).After(now.Add(v.skew)):
		return errors.New("auth_time missing or in the future")
	case c.Firebase.Tenant != "":
		// Identity Platform tenants are separate user pools of the
		// project; wactl serves the project's own users only.
		return errors.New("tokens of a tenant are not accepted")
	}
	return nil
}

func decodeSegment(seg string, dst any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, dst)
}

// keyCache holds the published certificates for as long as their
// Cache-Control max-age allows, and longer while a refresh fails (Google
// rotates keys with days of overlap, so an outage of the key URL must not
// lock everyone out). Fetches run outside the lock, one at a time: a
// request whose key is cached never waits for one, even when the key URL
// hangs. An unknown kid refetches at most once per minRefetch, and failed
// fetches back off, so garbage tokens cannot hammer Google.
type keyCache struct {
	url    string
	client *http.Client
	now    func() time.Time

	mu        sync.Mutex
	keys      map[string]*rsa.PublicKey
	expires   time.Time
	lastFetch time.Time     // start of the last fetch
	failures  int           // consecutive failed fetches
	retryAt   time.Time     // no fetch before this after a failure
	lastErr   error         // of the last failed fetch
	inflight  chan struct{} // closed when the running fetch ends; nil when none
}

const (
	minRefetch     = 30 * time.Second
	defaultKeysTTL = time.Hour
	fetchTimeout   = 10 * time.Second
	// Failed fetches back off from minBackoff, doubling to maxBackoff.
	minBackoff = 5 * time.Second
	maxBackoff = 5 * time.Minute
)

func (k *keyCache) key(ctx context.Context, kid string) (*rsa.PublicKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for waited := false; ; waited = true {
		now := k.now()
		pub, known := k.keys[kid]
		stale := k.keys == nil || now.After(k.expires)
		if !waited && (stale || (!known && now.Sub(k.lastFetch) >= minRefetch)) {
			k.startFetch(now)
		}
		if known {
			return pub, nil // stale keys serve while the refresh runs
		}
		if waited || k.inflight == nil {
			if k.keys == nil {
				err := k.lastErr
				if err == nil {
					err = errors.New("no fetch yet")
				}
				return nil, fmt.Errorf("%w: %v", errKeysUnavailable, err)
			}
			return nil, fmt.Errorf("%w: unknown key id", errTokenSignature)
		}
		// Unknown kid with a fetch running: it may bring the key.
		ch := k.inflight
		k.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
		}
		k.mu.Lock()
	}
}

// startFetch starts a fetch unless one is running or failures back it off;
// k.mu is held.
func (k *keyCache) startFetch(now time.Time) {
	if k.inflight != nil || now.Before(k.retryAt) {
		return
	}
	k.lastFetch = now
	done := make(chan struct{})
	k.inflight = done
	go func() {
		// Not the request's context: the fetch serves every request, and
		// one caller going away must not abort it for the others.
		ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
		keys, ttl, err := k.fetch(ctx)
		cancel()
		k.mu.Lock()
		defer k.mu.Unlock()
		now := k.now()
		if err != nil {
			k.failures++
			k.retryAt = now.Add(backoff(k.failures))
			k.lastErr = err
		} else {
			k.keys, k.expires = keys, now.Add(ttl)
			k.failures, k.retryAt, k.lastErr = 0, time.Time{}, nil
		}
		k.inflight = nil
		close(done)
	}()
}

func backoff(failures int) time.Duration {
	d := minBackoff
	for i := 1; i < failures && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
}

// fetch reads the published certificates and their max-age.
func (k *keyCache) fetch(ctx context.Context) (map[string]*rsa.PublicKey, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("%s answered %s", k.url, resp.Status)
	}
	var certs map[string]string
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&certs); err != nil {
		return nil, 0, err
	}
	keys, err := parseCerts(certs)
	if err != nil {
		return nil, 0, err
	}
	return keys, maxAge(resp.Header.Get("Cache-Control")), nil
}

func parseCerts(certs map[string]string) (map[string]*rsa.PublicKey, error) {
	keys := make(map[string]*rsa.PublicKey, len(certs))
	for kid, p := range certs {
		block, _ := pem.Decode([]byte(p))
		if block == nil {
			return nil, fmt.Errorf("key %q is not PEM", kid)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", kid, err)
		}
		pub, ok := cert.PublicKey.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("key %q is not RSA", kid)
		}
		keys[kid] = pub
	}
	if len(keys) == 0 {
		return nil, errors.New("no keys published")
	}
	return keys, nil
}

// maxAge reads Cache-Control max-age; without one the keys are kept an
// hour (Google publishes several hours).
func maxAge(cc string) time.Duration {
	for _, part := range strings.Split(cc, ",") {
		part = strings.TrimSpace(part)
		if v, ok := strings.CutPrefix(strings.ToLower(part), "max-age="); ok {
			if n, err := strconv.Atoi(v); err == nil && n > 0 {
				return time.Duration(n) * time.Second
			}
		}
	}
	return defaultKeysTTL
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
