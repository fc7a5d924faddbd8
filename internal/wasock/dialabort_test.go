package wasock_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/wasock"
)

// A dial to a server that accepts TCP and never answers the websocket
// upgrade ends when aborted, with ErrDialAborted, and the connect's own
// context (the one whatsmeow would keep for the socket) is not cancelled.
func TestDialAbortEndsAHungUpgrade(t *testing.T) {
	srv := wafake.Start(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	cli, _ := srv.NewTestClient(t)
	wafake.ConfigureClient(cli, ln.Addr().String())
	ctx, abort := wasock.WithDialAbort(context.Background())
	done := make(chan error, 1)
	go func() { done <- cli.ConnectContext(ctx) }()
	select {
	case err := <-done:
		t.Fatalf("connect to a server that never answers returned %v before the abort", err)
	case <-time.After(300 * time.Millisecond):
	}
	if wasock.DialAborted(ctx) {
		t.Fatal("DialAborted before the abort")
	}
	abort()
	abort() // twice is harmless
	select {
	case err := <-done:
		if !errors.Is(err, wasock.ErrDialAborted) {
			t.Fatalf("connect returned %v, want ErrDialAborted", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the abort did not end the hung dial")
	}
	if ctx.Err() != nil || !wasock.DialAborted(ctx) {
		t.Fatalf("after the abort: ctx.Err()=%v DialAborted=%v, want nil and true", ctx.Err(), wasock.DialAborted(ctx))
	}
	if !wasock.Detached(cli) {
		t.Fatal("an aborted dial left the client a socket")
	}
}

// An abort after the connect finished touches nothing: the connection
// stays up and its context stays live.
func TestDialAbortAfterConnectLeavesTheConnection(t *testing.T) {
	srv := wafake.Start(t)
	cli := pairedClient(t, srv, srv.Addr(), "15550009101")
	wasock.Close(cli)
	ctx, abort := wasock.WithDialAbort(context.Background())
	if err := cli.ConnectContext(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !cli.IsLoggedIn() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !cli.IsLoggedIn() {
		t.Fatal("never logged in")
	}
	abort()
	time.Sleep(300 * time.Millisecond)
	if ctx.Err() != nil || wasock.Detached(cli) || !cli.IsLoggedIn() {
		t.Fatalf("an abort after the connect broke it: ctx.Err()=%v detached=%v", ctx.Err(), wasock.Detached(cli))
	}
	wasock.Close(cli)
}

// An upgrade that answers after the abort is closed, never handed on: the
// decision is made before whatsmeow could see a socket.
func TestDialAbortClosesALateResponse(t *testing.T) {
	ctx, abort := wasock.WithDialAbort(context.Background())
	closed := &atomic.Bool{}
	late := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		abort() // the abort comes while the round trip is under way
		<-req.Context().Done()
		return &http.Response{StatusCode: http.StatusSwitchingProtocols,
			Body: closeRecorder{Reader: strings.NewReader(""), closed: closed}}, nil
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:1/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := wasock.AbortableTransport(late).RoundTrip(req)
	if resp != nil || !errors.Is(err, wasock.ErrDialAborted) {
		t.Fatalf("got %v, %v; want nil, ErrDialAborted", resp, err)
	}
	if !closed.Load() {
		t.Fatal("the late response's connection was not closed")
	}
	if ctx.Err() != nil {
		t.Fatal("the caller's context was cancelled")
	}

	// Without a dial abort in the context the transport is untouched.
	plain := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		if req.Context() != context.Background() {
			return nil, errors.New("the request's context was replaced")
		}
		return &http.Response{StatusCode: http.StatusOK, Body: io.NopCloser(strings.NewReader(""))}, nil
	})
	req, _ = http.NewRequestWithContext(context.Background(), http.MethodGet, "http://127.0.0.1:1/", nil)
	if resp, err := wasock.AbortableTransport(plain).RoundTrip(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("plain request: %v, %v", resp, err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

type closeRecorder struct {
	io.Reader
	closed *atomic.Bool
}

func (c closeRecorder) Close() error { c.closed.Store(true); return nil }
