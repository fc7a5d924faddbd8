// Package api serves the routes the Flutter app and its Cloud Functions call
// (legacy-contract.md, "HTTP routes"): accounts, QR codes, send-message,
// threads, inbox and messages, plus the outbox worker that delivers what
// the app's proxy queues. Every route needs a verified Firebase ID token or
// the configured service token; mutations are rate limited per principal,
// reads never are. See docs/api.md.
package api

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"time"

	"github.com/wactl/wactl/pkg/daemon"
	"github.com/wactl/wactl/pkg/store"
)

// DefaultKeyURL publishes the x509 certificates that sign Firebase ID tokens.
const DefaultKeyURL = "https://www.googleapis.com/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com"

// Defaults of Options.
const (
	DefaultMaxAccounts  = 30
	DefaultRatePerMin   = 120
	DefaultRateBurst    = 30
	DefaultMaxBodyBytes = 64 << 10
	DefaultClockSkew    = time.Minute
)

// Options configure the API; the serve command maps configuration keys to
// them (docs/api.md lists the keys).
type Options struct {
	// ProjectID is the Firebase project whose ID tokens are accepted; empty
	// accepts none (only the service token works).
	ProjectID string
	// KeyURL serves the signing certificates ({kid: PEM}); DefaultKeyURL
	// when empty. Plain http is accepted only on loopback (tests).
	KeyURL string
	// ServiceToken is the bearer token of the Cloud Functions (read by the
	// caller from a *_FILE secret); empty disables it. It acts as admin.
	ServiceToken string
	// AdminUIDs, AdminEmails (verified emails only) and AdminClaim (a
	// custom claim that must be true, e.g. "admin") make a user admin.
	AdminUIDs   []string
	AdminEmails []string
	AdminClaim  string
	// AllowedUIDs and AllowedEmails restrict reads to these users (plus
	// admins). Both empty: every verified user of the project may read.
	AllowedUIDs   []string
	AllowedEmails []string
	// AllowAnonymous accepts tokens of anonymous sign-ins
	// (firebase.sign_in_provider "anonymous") and AllowUnverifiedEmail
	// tokens whose e-mail is not verified; both refused by default (uids
	// named in AdminUIDs or AllowedUIDs are accepted either way).
	AllowAnonymous       bool
	AllowUnverifiedEmail bool
	// AuthFailuresPerMinute failed authentications from one client address
	// (IPv6: one /64) make it answer 429 until the minute is over (0: 60;
	// negative disables).
	AuthFailuresPerMinute int
	// TrustedProxies (http.trusted_proxies): for a request from one of
	// them the throttle's client address is the right-most address of
	// X-Forwarded-For that is not a trusted proxy.
	TrustedProxies []netip.Prefix
	// MaxAccounts is the account limit of add-account (0: 30).
	MaxAccounts int
	// CORSOrigins may call the API from a browser; empty allows none,
	// "*" any.
	CORSOrigins []string
	// RatePerMinute and RateBurst limit mutations per principal (0: 120
	// per minute, burst 30; negative RatePerMinute disables the limit).
	RatePerMinute int
	RateBurst     int
	// MaxBodyBytes caps request bodies (0: 64 KiB).
	MaxBodyBytes int64
	// ClockSkew tolerated on token times (0: one minute).
	ClockSkew time.Duration
	// Namespace and CountryCode build account ids from phone numbers
	// (dedupe.AccountID); empty means prod and 40.
	Namespace   string
	CountryCode string
}

// Deps are the running parts the API works with.
type Deps struct {
	WhatsApp WhatsApp
	Store    store.Store
	// Status is the daemon's snapshot (instance id, lock holder for the
	// PASSIVE answer); nil answers with what WhatsApp knows.
	Status func() daemon.Status
	// InstanceID names this instance (outbox claimer, answers).
	InstanceID string
	// HTTPClient fetches the signing keys; nil means a client with a 10 s
	// timeout.
	HTTPClient *http.Client
	// ClientAddr is the client's address for the authentication-failure
	// throttle; nil means the connection's remote address (behind a
	// proxy, wire it to the daemon's trusted-proxy logic).
	ClientAddr func(*http.Request) string
	Now        func() time.Time
	Log        *slog.Logger
}

// API is the app's HTTP API.
type API struct {
	o     Options
	d     Deps
	log   *slog.Logger
	now   func() time.Time
	auth  *authenticator
	guard *authGuard
	rate  *limiter
	qr    *qrCache
	regen *inflight
	send  *sender
	accts *accountCache
	addMu sync.Mutex
}

// New checks the options and builds the API.
func New(o Options, d Deps) (*API, error) {
	if d.WhatsApp == nil || d.Store == nil {
		return nil, errors.New("api: WhatsApp and Store are required")
	}
	if o.ProjectID == "" && o.ServiceToken == "" {
		return nil, errors.New("api: neither a Firebase project id nor a service token is configured, so every /api route would answer 401; set api.firebase_project_id or api.service_token_file")
	}
	if o.KeyURL == "" {
		o.KeyURL = DefaultKeyURL
	}
	if err := checkKeyURL(o.KeyURL); err != nil {
		return nil, err
	}
	if o.MaxAccounts <= 0 {
		o.MaxAccounts = DefaultMaxAccounts
	}
	if o.RatePerMinute == 0 {
		o.RatePerMinute = DefaultRatePerMin
	}
	if o.RateBurst <= 0 {
		o.RateBurst = DefaultRateBurst
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.ClockSkew <= 0 {
		o.ClockSkew = DefaultClockSkew
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.HTTPClient == nil {
		d.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	a := &API{o: o, d: d, log: d.Log.With("component", "api"), now: d.Now}
	a.auth = newAuthenticator(o, d.HTTPClient, d.Now)
	if d.ClientAddr == nil {
		d.ClientAddr = clientAddr(o.TrustedProxies)
	}
	a.guard = newAuthGuard(o.AuthFailuresPerMinute, d.Now, d.ClientAddr)
	a.rate = newLimiter(o.RatePerMinute, o.RateBurst, d.Now)
	a.qr = newQRCache()
	a.regen = newInflight()
	a.send = newSender(d.WhatsApp, d.Store, d.Now, a.log)
	a.accts = newAccountCache(d.Store, d.Now, 10*time.Second)
	return a, nil
}

func checkKeyURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("api: key URL %q: %w", raw, err)
	}
	switch {
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && isLoopbackHost(u.Hostname()):
		return nil
	}
	return fmt.Errorf("api: key URL %q must be https (plain http only on loopback, for tests)", raw)
}

// Register adds every API route to the daemon's mux (Go 1.22 patterns).
func (a *API) Register(mux *http.ServeMux) {
	read := func(h http.HandlerFunc) http.Handler { return a.wrap(h, roleReader, false) }
	admin := func(h http.HandlerFunc) http.Handler { return a.wrap(h, roleAdmin, false) }
	mutate := func(h http.HandlerFunc) http.Handler { return a.wrap(h, roleAdmin, true) }

	mux.Handle("GET /api/whatsapp/accounts", read(a.listAccounts))
	mux.Handle("POST /api/whatsapp/add-account", mutate(a.addAccount))
	mux.Handle("POST /api/whatsapp/regenerate-qr/{accountId}", mutate(a.regenerateQR))
	mux.Handle("DELETE /api/whatsapp/accounts/{accountId}", mutate(a.deleteAccount))
	mux.Handle("POST /api/whatsapp/accounts/{accountId}/reset", mutate(a.resetAccount))
	mux.Handle("PATCH /api/whatsapp/accounts/{accountId}/name", mutate(a.renameAccount))
	mux.Handle("POST /api/whatsapp/disconnect/{accountId}", mutate(a.disconnectAccount))
	mux.Handle("POST /api/whatsapp/backfill/{accountId}", mutate(a.backfill)) // backfill.go
	mux.Handle("GET /api/whatsapp/qr/{accountId}", admin(a.qrPage))
	mux.Handle("POST /api/whatsapp/send-message", mutate(a.sendMessage))
	mux.Handle("GET /api/whatsapp/threads/{accountId}", read(a.listThreads))
	mux.Handle("GET /api/whatsapp/inbox/{accountId}", read(a.inbox))
	mux.Handle("GET /api/whatsapp/messages/{accountId}/{threadId}", read(a.listMessages))
	mux.HandleFunc("OPTIONS /api/", a.preflight)
}

// Authorized reports whether r carries a valid token of an allowed user;
// the daemon uses it for the dashboard and /metrics of remote callers.
// Its failures are logged and throttled like the API routes' (authguard.go).
func (a *API) Authorized(r *http.Request) bool {
	if blocked, _ := a.guard.blocked(r); blocked {
		return false
	}
	p, err := a.auth.authenticate(r)
	if err != nil {
		a.authFailure(r, err)
		return false
	}
	return a.allowed(p, roleReader)
}
