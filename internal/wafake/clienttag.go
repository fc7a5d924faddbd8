package wafake

import (
	"net/http"
	"os"
)

// EnvClientTag names the process a client belongs to (for example its
// INSTANCE_ID) when several processes share one fake: every websocket the
// process opens carries it, and ConnRecord.Client reports it, so a test can
// tell which process held each connection.
const EnvClientTag = "WAFAKE_CLIENT_TAG"

// clientHeader carries the tag on the websocket upgrade request.
const clientHeader = "X-Wafake-Client"

// taggedTransport adds the process's tag to every request.
type taggedTransport struct {
	next http.RoundTripper
	tag  string
}

func (t taggedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(clientHeader, t.tag)
	return t.next.RoundTrip(r)
}

// tagged wraps rt when the environment names this process.
func tagged(rt http.RoundTripper) http.RoundTripper {
	if tag := os.Getenv(EnvClientTag); tag != "" {
		return taggedTransport{next: rt, tag: tag}
	}
	return rt
}
