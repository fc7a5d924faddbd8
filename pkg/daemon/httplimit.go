package daemon

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The connection cap. Every open connection costs a file descriptor, and
// one the daemon cannot get (EMFILE) stops it accepting anything, /health
// and the watchdog's self-probe included, while SQLite and WhatsApp
// sockets fail too. So connections are capped well under the fd limit.
//
// A cap alone hands the daemon to whoever holds the slots: a flood of
// slow clients that reconnect the moment they are dropped keeps every slot
// taken, and a health probe arriving then finds none. So when the slots
// are full a new connection takes the slot of the connection that has
// waited longest on its client (request head, body, keep-alive idle),
// never one whose handler is running. A few reserved slots past the cap
// serve only the health routes, for when every general slot is busy in a
// handler; they are short-lived and taken back the same way.
const (
	defaultMaxConns = 1024
	// fdHeadroom is what the rest of the daemon may need: SQLite files
	// (database, WAL, shared memory per connection), one session database
	// and one WebSocket per account, the admin socket, logs.
	minFDHeadroom = 64
	// reservedConns serve only the health routes once the cap is reached.
	reservedConns = 16
	// reservedReadTimeout bounds reading a reserved connection's request:
	// a health probe sends its request in one write.
	reservedReadTimeout = time.Second
	// reservedLifetime bounds a reserved connection from accept to close.
	reservedLifetime = 3 * time.Second
	// pendingConns may wait without a slot for their first bytes when
	// every slot is taken (see limitListener.addPending), each for at
	// most pendingReadTimeout.
	pendingConns       = 16
	pendingReadTimeout = time.Second
	// acceptBackoffMax caps the pause between accept attempts while the
	// process is out of file descriptors.
	acceptBackoffMax = time.Second
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
		n = min(n, limit-headroom-reservedConns-pendingConns)
	}
	return max(n, 8)
}

// limitListener caps accepted connections: up to max in general use, then
// up to reservedConns reserved (health only, short-lived). When both are
// full, a new connection takes the slot of the connection that has waited
// longest on its client; one that has sent nothing yet may instead wait
// without a slot (pendingConns) for its first bytes to decide. When no
// connection can give way (every one is in a handler), the new one is
// closed at once, which frees its descriptor immediately instead of
// leaving it in a retry loop of EMFILE.
type limitListener struct {
	net.Listener
	log *slog.Logger

	mu       sync.Mutex
	general  connPool
	reserved connPool
	pending  map[*limitedConn]struct{} // let in without a slot (see addPending)

	// seq orders waits: a connection that starts waiting on its client,
	// or makes progress while waiting, takes the next number, so the
	// smallest number is the connection that has waited longest.
	seq atomic.Uint64

	done      chan struct{}
	closeOnce sync.Once

	shed, evicted atomic.Int64
	lastWarn      atomic.Int64 // unix nanoseconds of the last "limit reached" warning
	lastFDWarn    atomic.Int64 // unix nanoseconds of the last "out of descriptors" warning
}

type connPool struct {
	max   int
	conns map[*limitedConn]struct{}
}

func newLimitListener(ln net.Listener, maxConns int, log *slog.Logger) *limitListener {
	return &limitListener{
		Listener: ln, log: log,
		general:  connPool{max: maxConns, conns: make(map[*limitedConn]struct{}, maxConns)},
		reserved: connPool{max: reservedConns, conns: make(map[*limitedConn]struct{}, reservedConns)},
		pending:  make(map[*limitedConn]struct{}, pendingConns),
		done:     make(chan struct{}),
	}
}

func (l *limitListener) Accept() (net.Conn, error) {
	var backoff time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if !outOfDescriptors(err) {
				return nil, err
			}
			// Out of descriptors: the connection stays queued in the
			// kernel. Free one by dropping the connection that has
			// waited longest, and pause instead of spinning on EMFILE.
			backoff = min(max(2*backoff, 5*time.Millisecond), acceptBackoffMax)
			l.noteOutOfDescriptors(err, backoff)
			if v := l.takeVictim(); v != nil {
				v.drop()
			}
			if !l.pause(backoff) {
				return nil, net.ErrClosed
			}
			continue
		}
		backoff = 0
		lc := &limitedConn{Conn: c, l: l, accepted: time.Now()}
		lc.wait.Store(l.seq.Add(1)) // waiting for its request
		victim, ok := l.admitOrYield(lc)
		if victim != nil {
			victim.drop()
			// Let the server's goroutines read what they were given,
			// so connections are judged on what they sent.
			runtime.Gosched()
		}
		if !ok && !lc.heard.Load() && l.addPending(lc) {
			// Nothing sent yet, and no slot without dropping a
			// connection that has not been heard either: it may be a
			// probe whose request is in flight. Its first bytes
			// decide (claim, on the server's first read).
			_ = lc.Conn.SetReadDeadline(lc.pendingEnd)
			return lc, nil
		}
		if !ok {
			_ = c.Close()
			l.noteShed()
			continue
		}
		lc.slotted(time.Time{})
		return lc, nil
	}
}

// addPending lets lc in without a slot, if fewer than pendingConns are,
// or else in place of a pending connection: first one whose first bytes
// are here and are not a health request (it would have had no slot
// either), else the one that has stayed silent longest. A request in
// flight arrives within a round trip of the connection; one silent for
// longer than the newcomer is less likely to be one. Refusing the
// newcomer instead would let a client that connects and says nothing
// fill the queue, so that a probe whose request is a moment behind its
// connection finds no room.
func (l *limitListener) addPending(lc *limitedConn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.pending) >= pendingConns {
		var victim, silent *limitedConn
		for c := range l.pending {
			heard, probe := peekRequest(c.Conn)
			if heard && !probe {
				victim = c
				break
			}
			if !heard && (silent == nil || c.accepted.Before(silent.accepted)) {
				silent = c
			}
		}
		if victim == nil {
			victim = silent
		}
		if victim == nil {
			return false // every one holds a health request
		}
		victim.pending.Store(false)
		delete(l.pending, victim)
		victim.drop()
	}
	lc.pendingEnd = time.Now().Add(pendingReadTimeout)
	lc.pending.Store(true)
	l.pending[lc] = struct{}{}
	return true
}

// claim gives a pending connection, whose first bytes just arrived, a
// slot as admit does: a complete health request may take any waiting
// connection's. It returns the connection to drop, if any, and false
// when there is no slot.
func (l *limitListener) claim(lc *limitedConn) (victim *limitedConn, ok bool) {
	l.mu.Lock()
	pending := lc.pending.Load()
	lc.pending.Store(false)
	delete(l.pending, lc)
	l.mu.Unlock()
	if !pending {
		return nil, false // dropped meanwhile
	}
	return l.admit(lc)
}

// slotted sets a connection's deadlines once it has its slot: a reserved
// one's fixed ends, and for one that was pending the read deadline the
// server asked for meanwhile (want).
func (c *limitedConn) slotted(want time.Time) {
	if !c.reserved {
		if !c.pendingEnd.IsZero() {
			_ = c.Conn.SetReadDeadline(want)
		}
		return
	}
	now := time.Now()
	c.readEnd, c.end = now.Add(reservedReadTimeout), now.Add(reservedLifetime)
	_ = c.Conn.SetReadDeadline(c.clamp(want, c.readEnd))
	_ = c.Conn.SetWriteDeadline(c.end)
}

// admitOrYield admits lc, looking first at whether it already holds a
// complete health request. When every waiting connection is one the
// server has not started reading yet (a flood accepted faster than it is
// read), it lets those be read a few times before giving up: one of them
// may be a probe whose request is in flight, and lc may be one too.
func (l *limitListener) admitOrYield(lc *limitedConn) (victim *limitedConn, ok bool) {
	for try := 0; ; try++ {
		if !lc.heard.Load() {
			heard, probe := peekRequest(lc.Conn)
			lc.heard.Store(heard)
			if probe {
				// A complete health request is here: it is
				// answered at once and must not lose its slot
				// before.
				lc.sniffed.Store(true)
				lc.wait.Store(0)
			}
		}
		if victim, ok = l.admit(lc); ok || try == admitYields {
			return victim, ok
		}
		runtime.Gosched()
	}
}

// freshGrace: a connection that has sent nothing yet is not dropped to
// make room for another such connection during this time after accept,
// because its request (maybe a health probe's) can still be in flight.
// Only a connection that brings a complete health request may take its
// slot. Past it, a silent connection is one more waiting on its client.
// A variable so tests can make it long (every silent connection fresh)
// or zero (none).
var freshGrace = 200 * time.Millisecond

// admitYields bounds admitOrYield's waiting (each yield lets every
// runnable goroutine run once).
const admitYields = 10

// admit gives lc a slot: a free general one, else a general one taken
// from a waiting connection, else the same in the reserved pool. It
// returns the connection to drop, if any, and false when there is no slot.
func (l *limitListener) admit(lc *limitedConn) (victim *limitedConn, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range []*connPool{&l.general, &l.reserved} {
		if len(p.conns) >= p.max {
			if victim = l.pickVictim(p, lc.wait.Load() == 0); victim == nil {
				continue
			}
			delete(p.conns, victim)
			l.evicted.Add(1)
		}
		lc.reserved = p == &l.reserved
		p.conns[lc] = struct{}{}
		return victim, true
	}
	return nil, false
}

// takeVictim removes the longest-waiting connection of either pool (to
// free a descriptor), or returns nil.
func (l *limitListener) takeVictim() *limitedConn {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range []*connPool{&l.general, &l.reserved} {
		if v := l.pickVictim(p, true); v != nil {
			delete(p.conns, v)
			l.evicted.Add(1)
			return v
		}
	}
	return nil
}

// pickVictim marks and returns the connection of p that has waited longest
// on its client; nil if every connection is in a handler or holds a
// complete health request. Called with l.mu held.
func (l *limitListener) pickVictim(p *connPool, takeFresh bool) *limitedConn {
	for range 4 { // a candidate that makes progress meanwhile is skipped
		var best *limitedConn
		var bestSeq uint64
		bestFresh := true
		now := time.Now()
		for c := range p.conns {
			s := c.wait.Load()
			if s == 0 || s == evictedMark {
				continue
			}
			fresh := !c.heard.Load() && now.Sub(c.accepted) < freshGrace
			if fresh && !takeFresh {
				continue
			}
			if best == nil || (bestFresh && !fresh) || (fresh == bestFresh && s < bestSeq) {
				best, bestSeq, bestFresh = c, s, fresh
			}
		}
		if best == nil {
			return nil
		}
		if !best.sniffed.Load() {
			// The server has not read its first bytes yet (a
			// busy machine can leave them unread past freshGrace):
			// a complete health request there is answered next,
			// so it keeps its slot.
			if _, probe := peekRequest(best.Conn); probe {
				best.wait.CompareAndSwap(bestSeq, 0)
				continue
			}
		}
		if best.wait.CompareAndSwap(bestSeq, evictedMark) {
			return best
		}
	}
	return nil
}

func (l *limitListener) release(c *limitedConn) {
	l.mu.Lock()
	if c.pending.Load() {
		c.pending.Store(false)
		delete(l.pending, c)
	} else if c.reserved {
		delete(l.reserved.conns, c)
	} else {
		delete(l.general.conns, c)
	}
	l.mu.Unlock()
}

// pause waits d, or returns false at once when the listener is closed.
func (l *limitListener) pause(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-l.done:
		return false
	}
}

func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

func outOfDescriptors(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}

// noteShed warns at most once a minute, with the counts since the last
// warning, so a flood cannot flood the journal too.
func (l *limitListener) noteShed() {
	l.shed.Add(1)
	if !rateOK(&l.lastWarn) {
		return
	}
	l.log.Warn("HTTP connection limit reached: dropping the connections that wait longest on their clients, closing new ones when none is waiting",
		"component", "http", "closed", l.shed.Swap(0), "dropped", l.evicted.Swap(0),
		"limit", l.general.max, "reserved", l.reserved.max)
}

func (l *limitListener) noteOutOfDescriptors(err error, backoff time.Duration) {
	if !rateOK(&l.lastFDWarn) {
		return
	}
	l.log.Warn("HTTP accept: out of file descriptors; dropping the longest-waiting connection and pausing accepts (raise LimitNOFILE or lower http.max_connections)",
		"component", "http", "err", err, "pause", backoff)
}

// rateOK reports whether a minute has passed since *last, and if so
// records now.
func rateOK(last *atomic.Int64) bool {
	now := time.Now().UnixNano()
	prev := last.Load()
	return now-prev >= int64(time.Minute) && last.CompareAndSwap(prev, now)
}

// evictedMark in limitedConn.wait: the listener has taken the slot back.
const evictedMark = ^uint64(0)

// errConnDropped is what a handler reading its body gets when the
// connection was dropped to make room: the request never runs further.
var errConnDropped = errors.New("connection dropped: the server is at its connection limit")

// limitedConn gives its slot back on Close. A reserved connection keeps
// its fixed deadlines: the server's own (header, body, idle) can only
// shorten them.
type limitedConn struct {
	net.Conn
	l        *limitListener
	reserved bool
	readEnd  time.Time // reserved: the request must be read by then
	end      time.Time // reserved: closed by then

	// wait is 0 while a handler runs or a complete health request waits
	// for it, evictedMark once dropped, and otherwise the listener's
	// sequence number of when this connection last started waiting on,
	// or heard from, its client.
	wait atomic.Uint64
	// sniffed: the first bytes were checked for a health request.
	sniffed atomic.Bool
	// heard: the client has sent something.
	heard    atomic.Bool
	accepted time.Time
	// pending: let in without a slot until its first bytes arrive, by
	// pendingEnd; wantRead is the read deadline the server set meanwhile.
	pending    atomic.Bool
	pendingEnd time.Time
	wantRead   time.Time
}

func (c *limitedConn) Read(p []byte) (int, error) {
	if c.pending.Load() {
		return c.readPending(p)
	}
	if s := c.wait.Load(); s != 0 && s != evictedMark {
		// The server waits on the client from now on.
		c.wait.CompareAndSwap(s, c.l.seq.Add(1))
	}
	n, err := c.Conn.Read(p)
	if n > 0 && !c.sniffed.Load() && c.sniffed.CompareAndSwap(false, true) && healthProbeHead(p[:n]) {
		// A complete health request: its handler runs next.
		if s := c.wait.Load(); s != evictedMark {
			c.wait.CompareAndSwap(s, 0)
		}
	}
	// Heard only once classified: until then a new connection counts as
	// fresh, so a probe whose request was just read is not taken for a
	// silent client in between.
	if n > 0 && !c.heard.Load() {
		c.heard.Store(true)
	}
	return n, err
}

// readPending is a pending connection's first read: its first bytes
// decide whether it gets a slot.
func (c *limitedConn) readPending(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n <= 0 {
		return n, err // nothing within pendingReadTimeout, or gone
	}
	c.heard.Store(true)
	c.sniffed.Store(true)
	if healthProbeHead(p[:n]) {
		c.wait.Store(0) // its handler runs next
	} else {
		c.wait.Store(c.l.seq.Add(1))
	}
	victim, ok := c.l.claim(c)
	if victim != nil {
		victim.drop()
	}
	if !ok {
		c.l.noteShed()
		_ = c.Conn.Close()
		return 0, errConnDropped
	}
	c.slotted(c.wantRead)
	return n, err
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.l.release(c)
	return err
}

// drop closes a connection whose slot was taken back; the server's
// goroutine sees its read fail and closes it (a second Close is harmless).
func (c *limitedConn) drop() { _ = c.Conn.Close() }

// startWait marks the connection as waiting on its client.
func (c *limitedConn) startWait() {
	for {
		s := c.wait.Load()
		if s == evictedMark || c.wait.CompareAndSwap(s, c.l.seq.Add(1)) {
			return
		}
	}
}

// stopWait marks a handler as running; false if the connection was
// dropped meanwhile (the handler must not go on).
func (c *limitedConn) stopWait() bool {
	for {
		s := c.wait.Load()
		if s == evictedMark {
			return false
		}
		if s == 0 || c.wait.CompareAndSwap(s, 0) {
			return true
		}
	}
}

func (c *limitedConn) clamp(t, end time.Time) time.Time {
	if c.reserved && (t.IsZero() || t.After(end)) {
		return end
	}
	return t
}

func (c *limitedConn) SetDeadline(t time.Time) error {
	if !c.reserved && !c.pending.Load() {
		return c.Conn.SetDeadline(t)
	}
	return errors.Join(c.SetReadDeadline(t), c.SetWriteDeadline(t))
}

func (c *limitedConn) SetReadDeadline(t time.Time) error {
	if c.pending.Load() {
		c.wantRead = t
		if t.IsZero() || t.After(c.pendingEnd) {
			t = c.pendingEnd
		}
		return c.Conn.SetReadDeadline(t)
	}
	return c.Conn.SetReadDeadline(c.clamp(t, c.readEnd))
}

func (c *limitedConn) SetWriteDeadline(t time.Time) error {
	return c.Conn.SetWriteDeadline(c.clamp(t, c.end))
}

// peekRequest looks at what c has already received, without consuming or
// waiting: whether any byte arrived, and whether it is a complete health
// request.
func peekRequest(c net.Conn) (heard, probe bool) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false, false
	}
	var buf [maxProbeHead]byte
	n := 0
	// Control, not Read: the server's goroutine may be blocked reading.
	cerr := rc.Control(func(fd uintptr) {
		n, _, err = syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	})
	if cerr != nil {
		return false, false
	}
	if err != nil || n <= 0 {
		return false, false
	}
	return true, healthProbeHead(buf[:n])
}

// maxProbeHead bounds what probeArrived looks at: a probe's request head
// (curl, Go, systemd-style checkers, load balancers) fits with room.
const maxProbeHead = 1024

// healthProbeHead reports whether b starts with a complete request head
// (request line and headers, up to the blank line) for a health route,
// GET or HEAD, as healthRoute accepts. A health request whose headers are
// still coming is not one: it waits on its client like any other.
func healthProbeHead(b []byte) bool {
	if !bytes.Contains(b, []byte("\r\n\r\n")) && !bytes.Contains(b, []byte("\n\n")) {
		return false
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	method, rest, _ := bytes.Cut(line, []byte(" "))
	if string(method) != "GET" && string(method) != "HEAD" {
		return false
	}
	target, _, _ := bytes.Cut(rest, []byte(" "))
	target, _, _ = bytes.Cut(target, []byte("?"))
	switch string(target) {
	case "/health", "/healthz", "/ready", "/readyz":
		return true
	}
	return false
}

type limitedConnKey struct{}

// connContext gives requests their connection (http.Server's ConnContext).
func connContext(ctx context.Context, c net.Conn) context.Context {
	if lc, ok := c.(*limitedConn); ok {
		return context.WithValue(ctx, limitedConnKey{}, lc)
	}
	return ctx
}

func connOf(ctx context.Context) *limitedConn {
	lc, _ := ctx.Value(limitedConnKey{}).(*limitedConn)
	return lc
}

func onReservedConn(ctx context.Context) bool {
	lc := connOf(ctx)
	return lc != nil && lc.reserved
}

// trackConnState is http.Server's ConnState hook: a connection idle
// between requests waits on its client; a closed one gives its slot back.
func trackConnState(c net.Conn, s http.ConnState) {
	lc, ok := c.(*limitedConn)
	if !ok {
		return
	}
	switch s {
	case http.StateIdle:
		lc.startWait()
	case http.StateClosed:
		lc.l.release(lc)
	}
}
