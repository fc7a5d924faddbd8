package wafake

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"

	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"
)

// Options tune a fake server. The zero value behaves like WhatsApp's defaults
// where the client can observe them (6 QR refs, about 160 s to scan).
type Options struct {
	// Addr to listen on; default "127.0.0.1:0".
	Addr string
	// QRRefs is how many refs a pair-device request carries (default 6).
	QRRefs int
	// PairTimeout is how long a connection waiting for a QR scan is kept
	// before the server closes it, which the client's QR channel reports as
	// "timeout". Default 160s; tests set a few hundred milliseconds.
	PairTimeout time.Duration
	// CloseGrace is how long the server waits after a <failure> or
	// <stream:error> before closing the socket, so that the client handles
	// the node before it sees the close (the real server also closes
	// right after). Default 200ms.
	CloseGrace time.Duration
	// Logger receives the fake's own diagnostics; nil discards them.
	Logger *slog.Logger
}

// Server is a fake WhatsApp server. All methods are safe for concurrent use.
type Server struct {
	opts   Options
	log    *slog.Logger
	ln     net.Listener
	http   *http.Server
	static *keys.KeyPair
	chain  []byte

	mu         sync.Mutex
	changed    chan struct{} // closed and replaced on every state change
	closed     bool
	nextConnID int
	conns      map[int]*conn
	live       map[types.JID]*conn // logged-in connection per device
	records    []ConnRecord
	devices    map[types.JID]*device
	accounts   map[string]*account // by phone number
	peers      map[types.JID]*peer
	refuseTill time.Time
	refusedN   int
	outdated   bool
	sent       []SentMessage
	deliveries []Delivery
	receipts   []Receipt
	sendCount  map[string]int
	unknownIQs []string
	nextMsg    int
	hist       historyState // history.go: media and history notifications
}

// New starts a fake server listening on loopback. Call Close when done.
func New(opts Options) (*Server, error) {
	TrustTestRoot()
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.QRRefs <= 0 {
		opts.QRRefs = 6
	}
	if opts.PairTimeout <= 0 {
		opts.PairTimeout = 160 * time.Second
	}
	if opts.CloseGrace <= 0 {
		opts.CloseGrace = 200 * time.Millisecond
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	static := keys.NewKeyPair()
	chain, err := certChain(static)
	if err != nil {
		return nil, fmt.Errorf("wafake: building certificate chain: %w", err)
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("wafake: listen on %s: %w", opts.Addr, err)
	}
	s := &Server{
		opts: opts, log: log, ln: ln, static: static, chain: chain,
		changed:   make(chan struct{}),
		conns:     map[int]*conn{},
		live:      map[types.JID]*conn{},
		devices:   map[types.JID]*device{},
		accounts:  map[string]*account{},
		peers:     map[types.JID]*peer{},
		sendCount: map[string]int{},
	}
	s.http = &http.Server{Handler: http.HandlerFunc(s.serveHTTP), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.http.Serve(ln) }()
	return s, nil
}

// Addr is the host:port the fake listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is the plain websocket URL of the fake (ws://host:port/ws/chat).
func (s *Server) URL() string { return "ws://" + s.Addr() + "/ws/chat" }

// Close stops accepting connections and drops every live one.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	conns := make([]*conn, 0, len(s.conns))
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.drop()
	}
	err := s.http.Close()
	s.notify()
	return err
}

// notify wakes everything waiting in waitFor. Callers may hold s.mu.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) notify() {
	s.mu.Lock()
	s.notifyLocked()
	s.mu.Unlock()
}

// waitFor blocks until cond (evaluated under s.mu) holds or ctx ends.
func (s *Server) waitFor(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		ok := cond()
		ch := s.changed
		s.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// RefuseConnections makes the fake answer new websocket upgrades with HTTP 503
// for d, as an unreachable or overloaded server would. whatsmeow treats 503 as
// retryable, so a client with auto-reconnect keeps trying.
func (s *Server) RefuseConnections(d time.Duration) {
	s.mu.Lock()
	s.refuseTill = time.Now().Add(d)
	s.mu.Unlock()
}

// RefusedCount is how many connection attempts were refused so far.
func (s *Server) RefusedCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refusedN
}

// SetClientOutdated makes every later login fail with 405 (client outdated),
// as when the compiled-in WhatsApp Web version is too old, until reset.
func (s *Server) SetClientOutdated(on bool) {
	s.mu.Lock()
	s.outdated = on
	s.mu.Unlock()
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if s.serveMedia(w, r) {
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "fake server closed", http.StatusServiceUnavailable)
		return
	}
	if time.Now().Before(s.refuseTill) {
		s.refusedN++
		s.notifyLocked()
		s.mu.Unlock()
		http.Error(w, "refusing connections", http.StatusServiceUnavailable)
		return
	}
	s.mu.Unlock()
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return
	}
	ws.SetReadLimit(1 << 24)
	c := &conn{srv: s, t: &transport{ws: ws}, done: make(chan struct{}), client: r.Header.Get(clientHeader)}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	defer cancel()
	s.mu.Lock()
	s.nextConnID++
	c.id = s.nextConnID
	s.conns[c.id] = c
	s.mu.Unlock()
	err = c.run(ctx)
	c.finish(err)
}

var errClosed = errors.New("wafake: connection closed")
