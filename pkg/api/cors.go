package api

import (
	"net/http"
	"slices"
)

// cors allows the configured browser origins; none by default, since the
// app is a Flutter app and the Functions are servers.
func (a *API) cors(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || len(a.o.CORSOrigins) == 0 {
		return false
	}
	if !slices.Contains(a.o.CORSOrigins, origin) && !slices.Contains(a.o.CORSOrigins, "*") {
		return false
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Add("Vary", "Origin")
	h.Set("Access-Control-Expose-Headers", "X-Request-ID, Retry-After")
	return true
}

func (a *API) preflight(w http.ResponseWriter, r *http.Request) {
	if !a.cors(w, r) {
		fail(w, r, http.StatusForbidden, "cors_forbidden", "origin not allowed (config api.cors_origins)")
		return
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", "GET, POST, PATCH, DELETE, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Request-ID")
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}
