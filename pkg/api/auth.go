package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"
)

// principal is who a request authenticated as.
type principal struct {
	Kind  string // firebase | service
	UID   string
	Email string
	Admin bool
	// Listed reports that the user is on the read allowlist.
	Listed bool
	// Anonymous: an anonymous sign-in; UnverifiedEmail: the token names an
	// e-mail that is not verified. Both refused unless allowed (refusal).
	Anonymous       bool
	UnverifiedEmail bool
}

// key names the principal for rate limiting.
func (p *principal) key() string {
	if p.Kind == "service" {
		return "service"
	}
	return "uid:" + p.UID
}

type role int

const (
	roleReader role = iota
	roleAdmin
)

type authenticator struct {
	o        Options
	verifier *verifier
	svcHash  [32]byte
}

func newAuthenticator(o Options, client *http.Client, now func() time.Time) *authenticator {
	a := &authenticator{o: o}
	if o.ProjectID != "" {
		a.verifier = &verifier{project: o.ProjectID, now: now, skew: o.ClockSkew,
			keys: &keyCache{url: o.KeyURL, client: client, now: now}}
	}
	if o.ServiceToken != "" {
		a.svcHash = sha256.Sum256([]byte(o.ServiceToken))
	}
	return a
}

var errNoToken = errors.New("no bearer token")

// authenticate reads the bearer token: the service token (compared in
// constant time over hashes, so its length does not leak either) or a
// Firebase ID token of the project.
func (a *authenticator) authenticate(r *http.Request) (*principal, error) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return nil, errNoToken
	}
	token = strings.TrimSpace(token)
	if token == "" || len(token) > 8192 {
		return nil, errNoToken
	}
	if a.o.ServiceToken != "" {
		sum := sha256.Sum256([]byte(token))
		if subtle.ConstantTimeCompare(sum[:], a.svcHash[:]) == 1 {
			return &principal{Kind: "service", UID: "service", Admin: true, Listed: true}, nil
		}
	}
	if a.verifier == nil {
		return nil, errTokenSignature
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	c, err := a.verifier.verify(ctx, token)
	if err != nil {
		return nil, err
	}
	p := &principal{Kind: "firebase", UID: c.Sub, Anonymous: c.Firebase.SignInProvider == "anonymous",
		UnverifiedEmail: c.Email != "" && !c.EmailVerified}
	if c.EmailVerified {
		p.Email = strings.ToLower(c.Email)
	}
	p.Admin = slices.Contains(a.o.AdminUIDs, p.UID) ||
		(p.Email != "" && containsFold(a.o.AdminEmails, p.Email)) ||
		(a.o.AdminClaim != "" && c.Extra[a.o.AdminClaim] == true)
	p.Listed = slices.Contains(a.o.AllowedUIDs, p.UID) || (p.Email != "" && containsFold(a.o.AllowedEmails, p.Email))
	return p, nil
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(strings.TrimSpace(v), s) {
			return true
		}
	}
	return false
}

// allowed applies the roles: admins may do everything; readers are every
// verified user unless an allowlist is configured.
func (a *API) allowed(p *principal, need role) bool {
	if a.refusal(p) != "" {
		return false
	}
	if p.Admin {
		return true
	}
	if need == roleAdmin {
		return false
	}
	if len(a.o.AllowedUIDs) == 0 && len(a.o.AllowedEmails) == 0 {
		return true
	}
	return p.Listed
}

type principalKey struct{}

func principalOf(r *http.Request) *principal {
	p, _ := r.Context().Value(principalKey{}).(*principal)
	return p
}

// wrap puts CORS, authentication, the role check and — for mutations —
// the PASSIVE check and the per-principal rate limit in front of h.
func (a *API) wrap(h http.HandlerFunc, need role, mutation bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.cors(w, r)
		if a.throttled(w, r) {
			return
		}
		p, err := a.auth.authenticate(r)
		if err != nil {
			a.authFailure(r, err)
			a.authFailed(w, r, err)
			return
		}
		if !a.allowed(p, need) {
			msg := "this route needs an admin (config api.admin_uids, api.admin_emails or the admin custom claim)"
			if need == roleReader {
				msg = "this user is not on the API allowlist (config api.allowed_uids / api.allowed_emails)"
			}
			if why := a.refusal(p); why != "" {
				msg = why
			}
			fail(w, r, http.StatusForbidden, "forbidden", msg)
			return
		}
		if !pathIDsOK(w, r) {
			return
		}
		if mutation {
			if !a.d.WhatsApp.Active() {
				a.passive(w, r)
				return
			}
			if ok, retry := a.rate.allow(p.key()); !ok {
				secs := int(retry/time.Second) + 1
				w.Header().Set("Retry-After", itoa(secs))
				writeJSON(w, r, http.StatusTooManyRequests, map[string]any{
					"error": "rate_limited", "message": "too many changes from this user; retry later", "retryAfterSeconds": secs})
				return
			}
		}
		h(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

func (a *API) authFailed(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errKeysUnavailable) {
		a.log.Warn("cannot verify Firebase tokens: signing keys unavailable", "err", err)
		fail(w, r, http.StatusServiceUnavailable, "auth_unavailable", "the token signing keys cannot be fetched right now; retry shortly")
		return
	}
	msg := "" // authhelp.go: the answer names the header and the credentials
	if !errors.Is(err, errNoToken) {
		// The reason helps the app's developers; it never contains the token.
		msg = "invalid token: " + err.Error()
	}
	a.unauthorized(w, r, msg)
}

// passive answers the contract's 503 for mutations on a PASSIVE instance.
func (a *API) passive(w http.ResponseWriter, r *http.Request) {
	body := map[string]any{"success": false, "error": "instance_passive", "mode": "passive", "message": PassiveMessage,
		"instanceId": a.d.InstanceID, "holderInstanceId": nil, "retryAfterSeconds": 15}
	if a.d.Status != nil {
		s := a.d.Status()
		if s.InstanceID != "" {
			body["instanceId"] = s.InstanceID
		}
		if s.LockHolder != "" {
			// The lease's holderInstanceId as written, like /health
			// lockHolder and /ready heldBy: "wactl:<id>" for a wactl
			// holder (lock.HolderPrefix), the bare id for the old service.
			body["holderInstanceId"] = s.LockHolder
		}
		if rem := int(s.LockRemaining / time.Second); rem > 0 {
			body["retryAfterSeconds"] = rem
		}
	}
	w.Header().Set("Retry-After", itoa(body["retryAfterSeconds"].(int)))
	writeJSON(w, r, http.StatusServiceUnavailable, body)
}
