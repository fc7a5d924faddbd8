package daemon

import (
	"net/http"
	"net/netip"
	"time"
)

// HandlerOptions assemble the daemon's HTTP routes.
type HandlerOptions struct {
	Status StatusFunc
	// StatusMaxAge > 0 serves /health and the dashboard from a snapshot at
	// most this old (StatusMaxAge for the daemon); 0 builds it per request.
	StatusMaxAge time.Duration
	// StatusVersion, when set, changes whenever an account's state does:
	// the snapshot is rebuilt at the next request.
	StatusVersion func() uint64
	// Now is the clock the snapshot's age is measured on; nil: time.Now.
	Now func() time.Time
	// Authorized decides whether a caller who is not local may read the
	// dashboard and metrics (the API's auth); nil: only local callers and
	// the status token.
	Authorized func(*http.Request) bool
	// StatusToken, when set, lets any caller that presents it as a bearer
	// token read the dashboard and metrics.
	StatusToken string
	// TrustedProxies are the reverse proxies in front of the daemon: their
	// requests are never local, even over loopback.
	TrustedProxies []netip.Prefix
	// Register adds further routes (the app's API) to the mux.
	Register func(*http.ServeMux)
}

// NewHandler returns the daemon's HTTP handler: health and status routes,
// /metrics, and whatever Register adds; every answer carries a request id
// and every request is measured.
func NewHandler(o HandlerOptions) http.Handler {
	mux := http.NewServeMux()
	access := newStatusAccess(o)
	hr := &healthRoutes{status: o.Status, access: access, cache: newStatusCache(o.Status, o.StatusMaxAge, o.StatusVersion, o.Now)}
	hr.register(mux)
	hm := newHTTPMetrics()
	reg := newRegistry(o.Status, hm)
	metrics := metricsHandler(reg)
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		if !access.allowed(r) {
			deny(w, r)
			return
		}
		metrics.ServeHTTP(w, r)
	})
	if o.Register != nil {
		o.Register(mux)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, r, http.StatusNotFound, map[string]any{"error": "not_found", "path": r.URL.Path})
	})
	return hm.wrap(mux)
}
