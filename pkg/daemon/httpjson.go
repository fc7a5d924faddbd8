package daemon

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"sync/atomic"
)

// withRequestID gives every request an id: the caller's X-Request-ID when it
// is sane (the Cloud Functions send one and correlate on it), else a new
// one. The id is echoed in the X-Request-ID header and in every JSON answer.
func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-ID")
		if !validRequestID(id) {
			id = newRequestID()
		}
		// Canonical keys set directly: Header.Set canonicalises on every
		// call, measurable on the routes that are polled and burst-tested.
		w.Header()["X-Request-Id"] = []string{id}
		// The id rides in an internal header (always overwritten here, so a
		// caller cannot set it) rather than a new context: no copy of the
		// request per call. The caller's own X-Request-ID stays as sent,
		// for the API's idempotency checks.
		r.Header[ridHeader] = []string{id}
		next.ServeHTTP(w, r)
	})
}

const ridHeader = "X-Wactl-Request-Id" // canonical form

// RequestID returns the id withRequestID assigned to r ("" for a request
// that did not pass through it).
func RequestID(r *http.Request) string {
	if v := r.Header[ridHeader]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}

// Generated ids are a random per-process prefix and a counter: unique, and
// cheap enough for the routes that are polled and burst-tested.
var (
	ridPrefix  = randomHex(6)
	ridCounter atomic.Uint64
)

func newRequestID() string {
	return ridPrefix + strconv.FormatUint(ridCounter.Add(1), 16)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// meta is embedded in typed answers: the fields every answer carries.
type meta struct {
	Success   bool   `json:"success"`
	RequestID string `json:"requestId"`
}

// writeTyped answers with a struct that embeds meta.
func writeTyped(w http.ResponseWriter, r *http.Request, status int, body any, m *meta) {
	m.Success = status >= 200 && status < 300
	m.RequestID = RequestID(r)
	setJSONHeaders(w)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

var (
	jsonContentType = []string{"application/json; charset=utf-8"}
	noStore         = []string{"no-store"}
)

func setJSONHeaders(w http.ResponseWriter) {
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["Cache-Control"] = noStore
}

// WriteJSON answers with body plus the fields every answer carries:
// success (true for 2xx unless the body says otherwise) and requestId. The
// app's API answers through it too.
func WriteJSON(w http.ResponseWriter, r *http.Request, status int, body map[string]any) {
	if _, ok := body["success"]; !ok {
		body["success"] = status >= 200 && status < 300
	}
	id := RequestID(r)
	if id == "" {
		id = newRequestID() // a handler used outside withRequestID
	}
	body["requestId"] = id
	setJSONHeaders(w)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
