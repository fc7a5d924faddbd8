package daemon

import (
	"io"
	"log/slog"
	"net/http"
	"time"
)

// The HTTP server's limits (issue 16 item 1). Every phase of a request has
// a deadline, so a client that stops sending or reading holds a connection
// for seconds, not forever.
// Variables, not constants, so tests can shorten them.
var (
	readHeaderTimeout = 10 * time.Second
	// bodyTimeout bounds reading a request body (64 KiB at most by
	// default): a client that cannot send it in this time is broken or
	// hostile.
	bodyTimeout = 15 * time.Second
	// writeTimeout bounds a read-only answer; longWriteTimeout the
	// mutations that wait for WhatsApp (send waits up to 45 s, pairing
	// calls 30 s).
	writeTimeout     = 30 * time.Second
	longWriteTimeout = 75 * time.Second
	idleTimeout      = 60 * time.Second
)

const maxHeaderBytes = 64 << 10

// newHTTPServer is the daemon's http.Server: deadlines on every phase, a
// header limit, the server's own error log through slog, and requests on a
// reserved connection limited to the health routes (see limitListener).
func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           withDeadlines(h),
		ReadHeaderTimeout: readHeaderTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.With("component", "http").Handler(), slog.LevelWarn),
		ConnContext:       connContext,
		ConnState:         trackConnState,
	}
}

// healthRoute reports whether a request is one a reserved connection may
// serve: the watchdog's self-probe (/healthz), load balancers and
// operators (/health, /ready, /readyz).
func healthRoute(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	switch r.URL.Path {
	case "/health", "/healthz", "/ready", "/readyz":
		return true
	}
	return false
}

// withDeadlines sets the per-request deadlines http.Server cannot express:
// the body must arrive within bodyTimeout (not set server-wide, because a
// server ReadTimeout also cancels a long handler's context once it
// passes), and mutations may answer within longWriteTimeout. It also tells
// the connection limit when a handler runs (its connection must not be
// dropped) and when it waits on its client (reading the body, or done).
func withDeadlines(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lc := connOf(r.Context())
		var body *deadlineBody
		if lc != nil {
			if !lc.stopWait() {
				// The connection was dropped to make room before its
				// handler started: the request must not run.
				w.Header().Set("Connection", "close")
				return
			}
			// Once the handler is done, its connection stays taken
			// until the answer is out (the server then reports it idle
			// or closed), unless the body was left unread: the server
			// then reads the rest from the client before answering,
			// and that waits on the client.
			defer func() {
				unread := r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody
				if body != nil {
					unread = !body.done
				}
				if unread {
					lc.startWait()
				}
			}()
		}
		rc := http.NewResponseController(w)
		if lc != nil && lc.reserved {
			// Past the connection cap: health only, then close.
			w.Header().Set("Connection", "close")
			if !healthRoute(r) {
				w.Header().Set("Retry-After", "5")
				WriteJSON(w, r, http.StatusServiceUnavailable, map[string]any{
					"error": "busy", "message": "too many open connections; retry later",
				})
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
		default:
			_ = rc.SetWriteDeadline(time.Now().Add(longWriteTimeout))
		}
		if r.Body != nil && r.Body != http.NoBody {
			_ = rc.SetReadDeadline(time.Now().Add(bodyTimeout))
			body = &deadlineBody{ReadCloser: r.Body, rc: rc, lc: lc}
			r.Body = body
		}
		next.ServeHTTP(w, r)
	})
}

// deadlineBody lifts the body deadline once the body has been read, so
// that the server's background read (which notices a client hanging up)
// does not time out under a long handler and cancel its context. While a
// read waits on the client, the connection counts as waiting: a flood
// that needs its slot may drop it, and the handler then gets an error
// instead of the rest of the body.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	lc   *limitedConn
	done bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	if b.lc != nil {
		b.lc.startWait()
	}
	n, err := b.ReadCloser.Read(p)
	if b.lc != nil && !b.lc.stopWait() {
		return n, errConnDropped
	}
	if err == io.EOF && !b.done {
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}
