package daemon

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"
)

// These tests drive the connection limit by hand: the test accepts, and
// nothing reads a connection unless the test does, so the order in which
// a client connects, sends and is read is the test's, not the scheduler's.
// The CI run that failed on TestFloodNeverCutsARunningHandler showed both
// orders under load (the flood's clients and the server in one busy
// process).

const probeRequest = "GET /health HTTP/1.1\r\nHost: x\r\nUser-Agent: probe\r\n\r\n"

type handLimiter struct {
	t  *testing.T
	ln net.Listener
	ll *limitListener
}

func newHandLimiter(t *testing.T, general int) *handLimiter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ll := newLimitListener(ln, general, slog.New(slog.DiscardHandler))
	t.Cleanup(func() { ll.Close() })
	return &handLimiter{t: t, ln: ln, ll: ll}
}

// connect dials, sends first (when first is not empty, and waits until the
// server side can see it), then accepts, and returns both ends.
func (h *handLimiter) connect(first string) (client net.Conn, server *limitedConn) {
	h.t.Helper()
	c, err := net.Dial("tcp", h.ln.Addr().String())
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { c.Close() })
	if first != "" {
		if _, err := io.WriteString(c, first); err != nil {
			h.t.Fatal(err)
		}
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		s, err := h.ll.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- s
	}()
	select {
	case s := <-accepted:
		if s == nil {
			h.t.Fatal("Accept failed")
		}
		lc := s.(*limitedConn)
		if first != "" {
			waitHeard(h.t, lc)
		}
		return c, lc
	case <-time.After(2 * time.Second):
		// Accept closed the connection and went on to wait for the
		// next one; the goroutine ends when the listener closes.
		return c, nil
	}
}

// waitHeard waits until what the client sent is in the server's socket.
func waitHeard(t *testing.T, lc *limitedConn) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		if heard, _ := peekRequest(lc.Conn); heard {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the client's bytes never reached the server's socket")
		}
		time.Sleep(time.Millisecond)
	}
}

// closedByServer reports whether the server closed c (EOF or reset) rather
// than leaving it open (a read that times out).
func closedByServer(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	var buf [64]byte
	_, err := c.Read(buf[:])
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout()) && !errors.Is(err, os.ErrDeadlineExceeded)
}

// TestSilentConnectionsCannotShedAProbe: with the general slots busy in
// handlers, the reserved slots held by connections that have said nothing
// yet, and the queue of connections waiting for their first bytes full of
// such connections too, a probe whose request is a moment behind its
// connection must still be let in and answered. Before the fix the queue
// refused it (only a queued connection that had sent something other than
// a health request could give way), and it was closed at once: the EOF of
// the CI run.
func TestSilentConnectionsCannotShedAProbe(t *testing.T) {
	saved := freshGrace
	freshGrace = time.Minute // every silent connection counts as fresh
	t.Cleanup(func() { freshGrace = saved })

	h := newHandLimiter(t, 1)
	_, busy := h.connect("POST /busy HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
	if busy == nil || !busy.stopWait() { // its handler runs
		t.Fatal("the busy connection was not let in")
	}
	var silent []net.Conn
	for i := range reservedConns + pendingConns {
		c, s := h.connect("")
		if s == nil {
			t.Fatalf("silent connection %d was closed at once with room left", i)
		}
		silent = append(silent, c)
	}
	if n := len(h.ll.pending); n != pendingConns {
		t.Fatalf("%d connections wait for their first bytes, want %d", n, pendingConns)
	}

	probe, ps := h.connect("")
	if ps == nil {
		t.Fatal("a probe connecting behind silent connections was closed at once")
	}
	if !ps.pending.Load() {
		t.Fatal("the probe should wait for its first bytes")
	}
	// The queue made room by dropping the connection silent longest.
	if !closedByServer(silent[reservedConns]) {
		t.Error("the oldest silent queued connection is still open")
	}
	if closedByServer(silent[len(silent)-1]) {
		t.Error("the newest silent queued connection was dropped instead of the oldest")
	}

	if _, err := io.WriteString(probe, probeRequest); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 512)
	n, err := ps.Read(buf)
	if err != nil || !healthProbeHead(buf[:n]) {
		t.Fatalf("the probe's request: %q, %v", buf[:n], err)
	}
	if !ps.reserved || ps.wait.Load() != 0 {
		t.Fatalf("the probe got no reserved slot (reserved=%v wait=%d)", ps.reserved, ps.wait.Load())
	}
	if _, err := io.WriteString(ps, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"); err != nil {
		t.Fatalf("answering the probe: %v", err)
	}
}

// TestUnreadProbeKeepsItsSlot: a probe whose complete request waits in its
// socket, unread because the server is busy, is past freshGrace and is the
// connection that has waited longest. A newcomer needing a slot must take
// another one's: the probe's handler runs as soon as it is read. Before
// the fix the probe was dropped with its request unread.
func TestUnreadProbeKeepsItsSlot(t *testing.T) {
	saved := freshGrace
	freshGrace = 0 // silence protects nobody
	t.Cleanup(func() { freshGrace = saved })

	h := newHandLimiter(t, 1)
	probe, ps := h.connect("") // takes the general slot before its request arrives
	if ps == nil || ps.reserved {
		t.Fatal("the probe did not get the general slot")
	}
	if _, err := io.WriteString(probe, probeRequest); err != nil {
		t.Fatal(err)
	}
	waitHeard(t, ps)
	// Newcomers that have sent a request (not a health one): the reserved
	// slots first, then one more, which must take a slot from a waiting
	// connection.
	var others []net.Conn
	for i := range reservedConns + 1 {
		c, s := h.connect("POST /api/x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
		if ps.wait.Load() == evictedMark {
			t.Fatalf("the probe was dropped with its request unread, to make room for newcomer %d", i+1)
		}
		if s == nil {
			t.Fatalf("newcomer %d was closed although waiting connections could give way", i+1)
		}
		others = append(others, c)
	}
	if closedByServer(probe) {
		t.Fatal("the probe's connection was closed")
	}
	if !closedByServer(others[0]) {
		t.Error("the reserved connection that waited longest should have given way")
	}
}
