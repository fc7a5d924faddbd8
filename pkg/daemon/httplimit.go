package daemon

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The connection cap. Every open connection costs a file descriptor, and
// one the daemon cannot get (EMFILE) stops it accepting anything, /health
// and the watchdog's self-probe included, while SQLite and WhatsApp
// sockets fail too. So connections are capped well under the fd limit,
// and a few reserved slots past the cap serve only the health routes, each
// for a short, fixed lifetime, so that a flood of slow clients cannot keep
// the daemon from answering its supervisor.
const (
	defaultMaxConns = 1024
	// fdHeadroom is what the rest of the daemon may need: SQLite files
	// (database, WAL, shared memory per connection), one session database
	// and one WebSocket per account, the admin socket, logs.
	minFDHeadroom = 64
	// reservedConns serve only the health routes once the cap is reached.
	reservedConns = 16
	// reservedLifetime bounds a reserved connection from accept to close.
	reservedLifetime = 3 * time.Second
)

// connBudget is how many general connections fit under the process's fd
// limit (read after the Go runtime raised the soft limit to the hard one).
func connBudget(configured int) int {
	n := configured
	if n <= 0 {
		n = defaultMaxConns
	}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil && rl.Cur < 1<<30 {
		limit := int(rl.Cur)
		headroom := max(minFDHeadroom, limit/4)
		n = min(n, limit-headroom-reservedConns)
	}
	return max(n, 8)
}

// limitListener caps accepted connections: up to max in general use, then
// up to reservedConns reserved (health only, short-lived); past both, a new
// connection is closed at once, which frees its descriptor immediately
// instead of leaving it in a retry loop of EMFILE.
type limitListener struct {
	net.Listener
	general  chan struct{}
	reserved chan struct{}
	log      *slog.Logger

	shed     atomic.Int64
	lastWarn atomic.Int64 // unix nanoseconds of the last "shedding" warning
}

func newLimitListener(ln net.Listener, maxConns int, log *slog.Logger) *limitListener {
	return &limitListener{
		Listener: ln, log: log,
		general:  make(chan struct{}, maxConns),
		reserved: make(chan struct{}, reservedConns),
	}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.general <- struct{}{}:
			return &limitedConn{Conn: c, release: func() { <-l.general }}, nil
		default:
		}
		select {
		case l.reserved <- struct{}{}:
			end := time.Now().Add(reservedLifetime)
			_ = c.SetDeadline(end)
			return &limitedConn{Conn: c, reserved: true, end: end, release: func() { <-l.reserved }}, nil
		default:
		}
		_ = c.Close()
		l.noteShed()
	}
}

// noteShed warns at most once a minute, with the count since the last
// warning, so a flood cannot flood the journal too.
func (l *limitListener) noteShed() {
	n := l.shed.Add(1)
	now := time.Now().UnixNano()
	last := l.lastWarn.Load()
	if now-last < int64(time.Minute) || !l.lastWarn.CompareAndSwap(last, now) {
		return
	}
	l.shed.Add(-n)
	l.log.Warn("HTTP connection limit reached: closing new connections at once",
		"component", "http", "closed", n, "limit", cap(l.general), "reserved", cap(l.reserved))
}

// limitedConn gives its slot back once, on Close. A reserved connection
// keeps its fixed end: the server's own deadlines (header, body, idle)
// can only shorten it.
type limitedConn struct {
	net.Conn
	reserved bool
	end      time.Time
	once     sync.Once
	release  func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

func (c *limitedConn) clamp(t time.Time) time.Time {
	if c.reserved && (t.IsZero() || t.After(c.end)) {
		return c.end
	}
	return t
}

func (c *limitedConn) SetDeadline(t time.Time) error { return c.Conn.SetDeadline(c.clamp(t)) }
func (c *limitedConn) SetReadDeadline(t time.Time) error {
	return c.Conn.SetReadDeadline(c.clamp(t))
}
func (c *limitedConn) SetWriteDeadline(t time.Time) error {
	return c.Conn.SetWriteDeadline(c.clamp(t))
}

type reservedConnKey struct{}

// connContext marks the requests of a reserved connection (http.Server's
// ConnContext).
func connContext(ctx context.Context, c net.Conn) context.Context {
	if lc, ok := c.(*limitedConn); ok && lc.reserved {
		return context.WithValue(ctx, reservedConnKey{}, true)
	}
	return ctx
}

func onReservedConn(ctx context.Context) bool {
	v, _ := ctx.Value(reservedConnKey{}).(bool)
	return v
}
