package daemon

import (
	"net/http"
)

// HandlerOptions assemble the daemon's HTTP routes.
type HandlerOptions struct {
	Status StatusFunc
	// Authorized decides whether a non-loopback caller may read the
	// dashboard and metrics; nil allows only loopback.
	Authorized func(*http.Request) bool
	// Register adds further routes (the app's API) to the mux.
	Register func(*http.ServeMux)
}

// NewHandler returns the daemon's HTTP handler: health and status routes,
// /metrics, and whatever Register adds; every answer carries a request id
// and every request is measured.
func NewHandler(o HandlerOptions) http.Handler {
	mux := http.NewServeMux()
	hr := &healthRoutes{status: o.Status, authorized: o.Authorized}
	hr.register(mux)
	hm := newHTTPMetrics()
	reg := newRegistry(o.Status, hm)
	metrics := metricsHandler(reg)
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		if !isLoopback(r) && (o.Authorized == nil || !o.Authorized(r)) {
			WriteJSON(w, r, http.StatusUnauthorized, map[string]any{"error": "unauthorized"})
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
