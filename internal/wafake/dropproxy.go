package wafake

import (
	"net"
	"sync"
	"testing"
)

// DropAfterHandshake starts a TCP proxy in front of addr that lets a client
// connect and finish the noise handshake, then drops the connection before
// anything else (the pair-device codes, <success>) reaches it: a network
// that fails right after connecting. It returns the proxy's address for
// ConfigureClient; the proxy stops with the test.
func DropAfterHandshake(t testing.TB, addr string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); dropAfterHandshake(c, addr) }()
		}
	}()
	return ln.Addr().String()
}

// The client writes three times before it expects anything but handshake
// replies: the websocket upgrade, ClientHello and ClientFinish, each after
// the server's answer to the previous one. After the third, nothing more
// is passed to the client and both sides are closed.
func dropAfterHandshake(c net.Conn, addr string) {
	defer c.Close()
	s, err := net.Dial("tcp", addr)
	if err != nil {
		return
	}
	defer s.Close()
	var mu sync.Mutex
	done := false
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := s.Read(buf)
			mu.Lock()
			if n > 0 && !done {
				_, _ = c.Write(buf[:n])
			}
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 32<<10)
	for writes := 0; writes < 3; writes++ {
		n, err := c.Read(buf)
		if writes == 2 {
			// Stop passing the server's bytes before ClientFinish reaches
			// it: its first post-handshake frame (the pair-device codes)
			// can come back before this goroutine runs again, and a
			// client that got a code has not lost its connection "before
			// a code" (seen in CI: the pairing reported "expired").
			mu.Lock()
			done = true
			mu.Unlock()
		}
		if n > 0 {
			if _, werr := s.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
