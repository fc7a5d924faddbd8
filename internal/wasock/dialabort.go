package wasock

import (
	"context"
	"errors"
	"net/http"
	"sync"

	"go.mau.fi/whatsmeow"
)

// ErrDialAborted is what a connect returns when its dial was aborted.
var ErrDialAborted = errors.New("dial aborted before the websocket was open")

type abortKey struct{}

// WithDialAbort returns the context to pass to Client.ConnectContext, and
// the function that aborts the connect's dial: the TCP and TLS connection
// and the websocket upgrade, before whatsmeow has a socket.
//
// A connect cannot be stopped by cancelling its context. whatsmeow keeps
// that context for the socket's read pump, which then closes the socket on
// its own goroutine while the connect's noise handshake is still setting
// up the same socket (NoiseSocket writes FrameSocket.OnDisconnect
// unlocked), or while wactl's own close runs: the races of docs/races.md.
// The abort reaches only the HTTP round trip of the dial (through
// AbortableTransport); once the upgrade has answered, the connect finishes
// (whatsmeow bounds the handshake) and its caller closes the client.
func WithDialAbort(ctx context.Context) (context.Context, func()) {
	ch := make(chan struct{})
	var once sync.Once
	return context.WithValue(ctx, abortKey{}, ch), func() { once.Do(func() { close(ch) }) }
}

// DialAborted reports whether ctx's dial abort has been called.
func DialAborted(ctx context.Context) bool {
	ch, _ := ctx.Value(abortKey{}).(chan struct{})
	if ch == nil {
		return false
	}
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// AbortableTransport wraps rt so that a request whose context comes from
// WithDialAbort ends with ErrDialAborted when the abort is called before
// its response. A response that came first is returned: the abort is then
// too late for this dial, and the connection it opened is the caller's to
// close. Requests without a dial abort go to rt unchanged.
func AbortableTransport(rt http.RoundTripper) http.RoundTripper {
	return abortable{next: rt}
}

type abortable struct{ next http.RoundTripper }

func (t abortable) RoundTrip(req *http.Request) (*http.Response, error) {
	abort, _ := req.Context().Value(abortKey{}).(chan struct{})
	if abort == nil {
		return t.next.RoundTrip(req)
	}
	select {
	case <-abort:
		return nil, ErrDialAborted
	default:
	}
	// The round trip gets a context of its own: cancelling it ends the dial
	// and leaves the caller's context, which whatsmeow keeps for the
	// socket, alone.
	ctx, cancel := context.WithCancel(req.Context())
	finished := make(chan struct{})
	go func() {
		select {
		case <-abort:
			cancel()
		case <-finished:
		}
	}()
	resp, err := t.next.RoundTrip(req.WithContext(ctx))
	close(finished)
	// A 101's connection belongs to the caller once RoundTrip returns:
	// net/http cancels the request's own context itself at that point, so
	// cancelling ours is harmless.
	cancel()
	select {
	case <-abort:
		// Decided here, before whatsmeow sees a socket: an upgrade that
		// won the race against the abort is closed, not handed on.
		if resp != nil {
			_ = resp.Body.Close()
		}
		return nil, ErrDialAborted
	default:
		return resp, err
	}
}

// UseAbortableHTTP gives cli the HTTP clients whatsmeow would make for
// itself (a clone of http.DefaultTransport) with AbortableTransport around
// them, for the websocket before and after login.
func UseAbortableHTTP(cli *whatsmeow.Client) {
	h := AbortableHTTPClient(http.DefaultTransport.(*http.Transport).Clone())
	cli.SetWebsocketHTTPClient(h)
	cli.SetPreLoginHTTPClient(h)
}

// AbortableHTTPClient is an http.Client on AbortableTransport(rt).
func AbortableHTTPClient(rt http.RoundTripper) *http.Client {
	return &http.Client{Transport: AbortableTransport(rt)}
}
