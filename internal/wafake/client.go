package wafake

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver for OpenStore

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/store/sqlstore"
	waLog "go.mau.fi/whatsmeow/util/log"

	"github.com/wactl/wactl/internal/wasock"
)

// Environment variables that point a child process at a fake server. The
// parent sets them from Server.Env; a test-only hook in the child reads them
// (see ConfigureClientFromEnv, or docs/testing.md for the recipe that does
// not import this package).
const (
	// EnvAddr is the fake's host:port. Every websocket the client opens,
	// whatever its URL (wss://web.whatsapp.com/ws/chat), is dialled there
	// over plain TCP, with no TLS.
	EnvAddr = "WAFAKE_ADDR"
	// EnvRootKey is the hex public key of the test root (RootPublicKeyHex)
	// that must replace whatsmeow.WACertPubKey in the child.
	EnvRootKey = "WAFAKE_ROOT_KEY"
)

// Env returns the environment entries that point a child process at s.
func (s *Server) Env() []string {
	return []string{EnvAddr + "=" + s.Addr(), EnvRootKey + "=" + RootPublicKeyHex()}
}

// HTTPClientFor returns an HTTP client that connects every request, whatever
// its host and scheme, to addr over plain TCP. whatsmeow dials
// wss://web.whatsapp.com/ws/chat; giving it this client (for both the
// websocket and the pre-login websocket) makes it talk to the fake instead.
func HTTPClientFor(addr string) *http.Client {
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
	// Abortable like the daemon's own clients (wasock.WithDialAbort), so
	// a step-down aborts a dial to the fake the way it aborts one to
	// WhatsApp.
	return &http.Client{Transport: wasock.AbortableTransport(tagged(&http.Transport{
		DialContext: dial,
		// The "TLS" dial returns a plain connection: the fake speaks HTTP/1.1
		// websocket without TLS, and net/http accepts a non-TLS conn here.
		DialTLSContext:    dial,
		ForceAttemptHTTP2: false,
		DisableKeepAlives: true,
	}))}
}

// HTTPClient is HTTPClientFor(s.Addr()).
func (s *Server) HTTPClient() *http.Client { return HTTPClientFor(s.Addr()) }

// ConfigureClient points an existing whatsmeow client at the fake at addr.
func ConfigureClient(cli *whatsmeow.Client, addr string) {
	h := HTTPClientFor(addr)
	cli.SetWebsocketHTTPClient(h)
	cli.SetPreLoginHTTPClient(h)
	cli.SetMediaHTTPClient(h) // history blobs and media download from the fake
}

var envRootOnce sync.Once

// ConfigureClientFromEnv points cli at the fake named by EnvAddr and trusts
// the root in EnvRootKey. It returns false, doing nothing, when EnvAddr is
// unset. Call it before the first Connect of any client in the process.
func ConfigureClientFromEnv(cli *whatsmeow.Client) (bool, error) {
	addr := os.Getenv(EnvAddr)
	if addr == "" {
		return false, nil
	}
	key, err := ParseRootKey(os.Getenv(EnvRootKey))
	if err != nil {
		return false, err
	}
	envRootOnce.Do(func() { whatsmeow.WACertPubKey = key })
	if whatsmeow.WACertPubKey != key {
		return false, fmt.Errorf("wafake: whatsmeow already trusts another root key")
	}
	ConfigureClient(cli, addr)
	return true, nil
}

// StoreDSN is the SQLite DSN for a whatsmeow store at path, as wactl uses it.
func StoreDSN(path string) string {
	return "file:" + path + "?_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=synchronous(NORMAL)&_txlock=immediate"
}

// OpenStore opens (creating if needed) a real whatsmeow SQLite store.
func OpenStore(ctx context.Context, path string) (*sqlstore.Container, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	return sqlstore.New(ctx, "sqlite", StoreDSN(path), nil)
}

// NewClient returns a whatsmeow client for dev that connects to the fake.
// It is configured as a daemon should be for not losing messages
// (EnableDecryptedEventBuffer) — tests can change any field before Connect.
func (s *Server) NewClient(dev *store.Device, log waLog.Logger) *whatsmeow.Client {
	cli := whatsmeow.NewClient(dev, log)
	ConfigureClient(cli, s.Addr())
	cli.EnableDecryptedEventBuffer = true
	return cli
}

var fastKeepAliveOnce sync.Once

// FastKeepAlive shortens whatsmeow's keepalive timing (package variables) so
// that a stalled server is noticed in seconds instead of minutes: pings every
// 200-400 ms, 1.5 s to answer, forced reconnect after 4 s without an answer.
// The margins are wide enough for a loaded machine running -race, where a
// tighter deadline makes healthy connections reconnect spuriously. It must
// run before any client connects (e.g. in TestMain), because clients read
// these variables concurrently.
func FastKeepAlive() {
	fastKeepAliveOnce.Do(func() {
		whatsmeow.KeepAliveIntervalMin = 200 * time.Millisecond
		whatsmeow.KeepAliveIntervalMax = 400 * time.Millisecond
		whatsmeow.KeepAliveResponseDeadline = 1500 * time.Millisecond
		whatsmeow.KeepAliveMaxFailTime = 4 * time.Second
	})
}
