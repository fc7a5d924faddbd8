package wasock_test

import (
	"context"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	waBinary "go.mau.fi/whatsmeow/binary"

	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/wasock"
)

func TestMain(m *testing.M) {
	wafake.TrustTestRoot()
	os.Exit(m.Run())
}

// A write stuck in the network is waited for up to the bound, then the
// close ends it; with no write in flight the close is immediate. (That a
// finished or in-flight write is ordered before the close is what -race
// checks across the wafake and daemon tests that close clients this way.)
func TestCloseWaitsForTheWriteInFlight(t *testing.T) {
	srv := wafake.Start(t)
	px := startProxy(t, srv.Addr())
	cli := pairedClient(t, srv, px.addr(), "15550009001")

	if wasock.Detached(cli) {
		t.Fatal("Detached says a connected client has no socket")
	}
	start := time.Now()
	wasock.CloseWithin(cli, 3*time.Second)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("close with no write in flight took %v", d)
	}
	if cli.IsConnected() || !wasock.Detached(cli) {
		t.Fatal("client still connected after Close")
	}

	cli = pairedClient(t, srv, px.addr(), "15550009002")
	px.pause() // the server's side stops taking bytes
	sent := make(chan error, 1)
	go func() {
		// Larger than both sockets' buffers on loopback: the write blocks
		// holding whatsmeow's write lock until the socket closes.
		big := waBinary.Node{Tag: "iq", Content: make([]byte, 14<<20)}
		sent <- cli.DangerousInternals().SendNode(context.Background(), big)
	}()
	waitWriteHeld(t, cli, sent)
	const bound = 700 * time.Millisecond
	start = time.Now()
	wasock.CloseWithin(cli, bound)
	d := time.Since(start)
	if d < bound-50*time.Millisecond {
		t.Fatalf("Close returned after %v, before the write in flight or its bound %v", d, bound)
	}
	if cli.IsConnected() {
		t.Fatal("client still connected after Close")
	}
	select {
	case <-sent: // closing the socket ended the stuck write
	case <-time.After(15 * time.Second):
		t.Fatal("the stuck write never ended after Close")
	}
}

// waitWriteHeld returns once the write whose result comes on sent holds
// cli's write lock: a probe that takes that lock no longer gets it. Under
// -race, encoding 14 MiB takes long enough that a fixed sleep let the close
// take the lock before the write had it.
func waitWriteHeld(t *testing.T, cli *whatsmeow.Client, sent chan error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		got := make(chan struct{})
		go func() { wasock.Detached(cli); close(got) }()
		select {
		case <-got: // the lock was free: the write has not started yet
			time.Sleep(50 * time.Millisecond)
		case err := <-sent:
			t.Fatalf("14 MiB write finished with the peer not reading (%v): the test cannot hold a write in flight", err)
		case <-time.After(200 * time.Millisecond):
			return // the probe waits for the lock: the write holds it
		}
	}
	t.Fatal("the 14 MiB write never took the write lock")
}

// pairedClient pairs a fresh device through proxy and returns it connected,
// with whatsmeow's post-login IQs done.
func pairedClient(t *testing.T, srv *wafake.Server, proxy, phone string) *whatsmeow.Client {
	t.Helper()
	cli, _ := srv.NewTestClient(t)
	wafake.ConfigureClient(cli, proxy)
	srv.PairTestClient(t, cli, phone)
	return cli
}

// proxy forwards TCP to the fake; pause stops it reading from the client.
type proxy struct {
	ln     net.Listener
	mu     sync.Mutex
	paused chan struct{} // closed while running
}

func startProxy(t *testing.T, upstream string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, paused: make(chan struct{})}
	close(p.paused)
	var wg sync.WaitGroup
	var conns []net.Conn
	var cmu sync.Mutex
	t.Cleanup(func() {
		ln.Close()
		cmu.Lock()
		for _, c := range conns {
			c.Close()
		}
		cmu.Unlock()
		p.resume()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", upstream)
			if err != nil {
				c.Close()
				continue
			}
			cmu.Lock()
			conns = append(conns, c, u)
			cmu.Unlock()
			wg.Add(2)
			go func() { defer wg.Done(); p.copyGated(u, c); u.Close() }()
			go func() { defer wg.Done(); _, _ = io.Copy(c, u); c.Close() }()
		}
	}()
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) pause() {
	p.mu.Lock()
	p.paused = make(chan struct{})
	p.mu.Unlock()
}

func (p *proxy) resume() {
	p.mu.Lock()
	select {
	case <-p.paused:
	default:
		close(p.paused)
	}
	p.mu.Unlock()
}

// copyGated copies client → server, reading nothing while paused.
func (p *proxy) copyGated(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		p.mu.Lock()
		gate := p.paused
		p.mu.Unlock()
		<-gate
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
