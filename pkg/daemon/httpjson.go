package daemon

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"sync/atomic"
)

// assignRequestID gives r an id: the caller's X-Request-ID when it is sane
// (the Cloud Functions send one and correlate on it), else a new one. The
// id is echoed in the X-Request-ID header and in every JSON answer. vals is
// backing store the caller allocates with the rest of its per-request state,
// so tagging a request costs no allocation of its own beyond a new id.
func assignRequestID(w http.ResponseWriter, r *http.Request, vals *[2]string) {
	// Incoming header keys are canonical already (the server's reader
	// canonicalises them); indexing skips Header.Get's canonicalisation.
	var id string
	if v := r.Header["X-Request-Id"]; len(v) > 0 {
		id = v[0]
	}
	if !validRequestID(id) {
		id = newRequestID()
	}
	vals[0], vals[1] = id, id
	// Canonical keys set directly: Header.Set canonicalises on every call,
	// measurable on the routes that are polled and burst-tested. Each map
	// gets its own full-capacity slice, so an append to one never shows in
	// the other.
	w.Header()["X-Request-Id"] = vals[0:1:1]
	// The id rides in an internal header (always overwritten here, so a
	// caller cannot set it) rather than a new context: no copy of the
	// request per call. The caller's own X-Request-ID stays as sent, for
	// the API's idempotency checks.
	if r.Header == nil {
		r.Header = http.Header{}
	}
	r.Header[ridHeader] = vals[1:2:2]
}

const ridHeader = "X-Wactl-Request-Id" // canonical form

// RequestID returns the id NewHandler assigned to r ("" for a request
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
	var b [40]byte
	return string(strconv.AppendUint(append(b[:0], ridPrefix...), ridCounter.Add(1), 16))
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// meta is embedded in typed answers (healthBody): the fields every answer
// carries.
type meta struct {
	Success   bool   `json:"success"`
	RequestID string `json:"requestId"`
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
		id = newRequestID() // a handler used outside NewHandler
	}
	body["requestId"] = id
	setJSONHeaders(w)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
