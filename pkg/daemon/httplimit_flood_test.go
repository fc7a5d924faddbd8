package daemon

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// floodHandler answers the health routes at once and reads a request's
// whole body before answering anything else (so a slow body keeps its
// handler waiting on the client, as the API's JSON routes do).
func floodHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if healthRoute(r) {
			io.WriteString(w, "ok")
			return
		}
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, "body: "+err.Error(), http.StatusRequestTimeout)
			return
		}
		io.WriteString(w, "done")
	})
}

// Requests an attacker can hold a connection with: a body that never
// arrives, and a health request whose headers never end.
const (
	slowBodyRequest   = "POST /api/whatsapp/send-message HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
	slowHealthRequest = "GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: "
)

// reconnectPause: the flood's pause before reconnecting a dropped
// connection (about 1,000 to 3,000 connections a second in all here).
const reconnectPause = 20 * time.Millisecond

// flood keeps n connections open against addr, each sending one of the
// slow requests, and reconnects each one as soon as the server drops it,
// the way a determined client does. It stops when the test ends.
func flood(t *testing.T, addr string, n int) (attempts *atomic.Int64) {
	t.Helper()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	attempts = new(atomic.Int64)
	for i := range n {
		req := slowBodyRequest
		if i%2 == 1 {
			req = slowHealthRequest
		}
		wg.Go(func() {
			buf := make([]byte, 512)
			for {
				select {
				case <-stop:
					return
				default:
				}
				attempts.Add(1)
				c, err := net.DialTimeout("tcp", addr, time.Second)
				if err != nil {
					time.Sleep(time.Millisecond)
					continue
				}
				if _, err := io.WriteString(c, req); err == nil {
					// Hold the connection until the server drops it.
					for {
						_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
						_, err := c.Read(buf)
						var ne net.Error
						if errors.As(err, &ne) && ne.Timeout() {
							select {
							case <-stop:
							default:
								continue
							}
						}
						break
					}
				}
				c.Close()
				time.Sleep(reconnectPause)
			}
		})
	}
	t.Cleanup(func() { close(stop); wg.Wait() })
	return attempts
}

// probeHealth asks /health every interval for d on a fresh connection each
// time, as the watchdog's self-probe and a load balancer do, and returns
// every failure.
func probeHealth(addr string, d, interval time.Duration) (ok int, failures []string) {
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	start := time.Now()
	for time.Since(start) < d {
		at := time.Now()
		resp, err := client.Get("http://" + addr + "/health")
		switch {
		case err != nil:
			failures = append(failures, fmt.Sprintf("%.2fs: %v", time.Since(start).Seconds(), err))
		default:
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || string(b) != "ok" {
				failures = append(failures, fmt.Sprintf("%.2fs: %d %q", time.Since(start).Seconds(), resp.StatusCode, b))
			} else {
				ok++
			}
		}
		time.Sleep(max(0, interval-time.Since(at)))
	}
	return ok, failures
}

// TestFloodReconnectsCannotStarveHealth: a flood that holds every slot,
// general and reserved, with slow bodies and slow health headers, and
// reconnects each connection the moment it is dropped, must not keep a
// health probe from being answered. Before the fix, the flood's reconnects
// took each reserved slot as it freed and held it for its whole lifetime,
// so nearly every probe was closed at once.
func TestFloodReconnectsCannotStarveHealth(t *testing.T) {
	addr := startLimited(t, 16, floodHandler())
	attempts := flood(t, addr, 3*(16+reservedConns))
	time.Sleep(300 * time.Millisecond) // every slot taken
	ok, failures := probeHealth(addr, 2*time.Second, 50*time.Millisecond)
	t.Logf("%d probes answered, %d failed; the flood made %d connection attempts", ok, len(failures), attempts.Load())
	if len(failures) > 0 {
		t.Fatalf("/health failed %d time(s) under a reconnecting flood: %v", len(failures), failures)
	}
}

// holdHandlers takes every general slot with a request whose handler runs
// (body read, waiting on release) and returns the connections' answers.
func holdHandlers(t *testing.T, addr string, n int, release <-chan struct{}, running *sync.WaitGroup) <-chan string {
	t.Helper()
	answers := make(chan string, n)
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		running.Add(1)
		fmt.Fprint(c, "POST /busy HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
		go func() {
			_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				answers <- "error: " + err.Error()
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			answers <- fmt.Sprintf("%d %s", resp.StatusCode, b)
		}()
	}
	return answers
}

// busyHandler is floodHandler plus /busy, which reads its body and then
// runs until release is closed.
func busyHandler(release <-chan struct{}, running *sync.WaitGroup) http.Handler {
	next := floodHandler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/busy" {
			next.ServeHTTP(w, r)
			return
		}
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		running.Done()
		<-release
		io.WriteString(w, "finished")
	})
}

// TestFloodNeverCutsARunningHandler: with every general slot held by a
// handler that is running, a reconnecting flood takes what is left, yet
// health probes are answered (from the reserved slots) and every running
// handler finishes with its answer: only connections waiting on their
// client are ever dropped to make room.
func TestFloodNeverCutsARunningHandler(t *testing.T) {
	release := make(chan struct{})
	var running sync.WaitGroup
	const general = 8
	addr := startLimited(t, general, busyHandler(release, &running))
	answers := holdHandlers(t, addr, general, release, &running)
	running.Wait()
	flood(t, addr, 2*(general+reservedConns))
	time.Sleep(300 * time.Millisecond)
	ok, failures := probeHealth(addr, 1500*time.Millisecond, 50*time.Millisecond)
	close(release)
	for range general {
		select {
		case a := <-answers:
			if a != "200 finished" {
				t.Errorf("a running handler's connection got %q", a)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a running handler never answered")
		}
	}
	t.Logf("%d probes answered, %d failed", ok, len(failures))
	if len(failures) > 0 {
		t.Fatalf("/health failed %d time(s) with the general slots busy: %v", len(failures), failures)
	}
}

// TestSlowHealthHeadersCannotPinReservedSlots: with the general slots busy,
// connections that start a health request and never finish its headers
// cannot hold the reserved slots: a probe still gets in, and each of them
// is dropped within the reserved read deadline even when nobody needs its
// slot.
func TestSlowHealthHeadersCannotPinReservedSlots(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	var running sync.WaitGroup
	addr := startLimited(t, 2, busyHandler(release, &running))
	holdHandlers(t, addr, 2, release, &running)
	running.Wait()
	var slow []net.Conn
	for range reservedConns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, slowHealthRequest)
		slow = append(slow, c)
	}
	time.Sleep(100 * time.Millisecond)
	if ok, failures := probeHealth(addr, 300*time.Millisecond, 50*time.Millisecond); len(failures) > 0 {
		t.Fatalf("/health failed %d time(s) (%d answered) with the reserved slots held by slow health headers: %v", len(failures), ok, failures)
	}
	start := time.Now()
	for _, c := range slow {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadAll(c); err != nil {
			t.Fatalf("a slow health request still open after 5 s: %v", err)
		}
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("the slow health requests were dropped after %s", took)
	}
}

// TestHealthProbeHead: only a complete health request head (GET or HEAD)
// protects its connection from being dropped; a slow one does not.
func TestHealthProbeHead(t *testing.T) {
	for head, want := range map[string]bool{
		"GET /health HTTP/1.1\r\nHost: x\r\n\r\n":                                    true,
		"GET /healthz HTTP/1.1\r\nHost: x\r\nUser-Agent: Go-http-client/1.1\r\n\r\n": true,
		"HEAD /ready HTTP/1.0\r\n\r\n":                                               true,
		"GET /readyz?x=1 HTTP/1.1\r\nHost: x\r\n\r\n":                                true,
		"GET /health HTTP/1.1\nHost: x\n\n":                                          true,
		"GET /health HTTP/1.1\r\nHost: x\r\n":                                        false, // headers still coming
		"GET /health":                                                                false,
		"GET /healthcheck HTTP/1.1\r\n\r\n":                                          false,
		"POST /health HTTP/1.1\r\n\r\n":                                              false,
		"GET /api/status HTTP/1.1\r\n\r\n":                                           false,
		"get /health HTTP/1.1\r\n\r\n":                                               false,
		"GET /health/x HTTP/1.1\r\n\r\n":                                             false,
		"GET http://x/health HTTP/1.1\r\n\r\n":                                       false,
	} {
		if got := healthProbeHead([]byte(head)); got != want {
			t.Errorf("%q: %v, want %v", head, got, want)
		}
	}
}

// TestIdleConnectionGivesWayAtTheCap: a keep-alive connection idle
// between requests waits on its client, so at the cap a new client takes
// its slot instead of being refused.
func TestIdleConnectionGivesWayAtTheCap(t *testing.T) {
	addr := startLimited(t, 2, floodHandler())
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprint(c, "GET /x HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
		if _, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.Post("http://"+addr+"/api/x", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(b) != "done" {
		t.Fatalf("a new client at the cap with idle connections open: %d %q", resp.StatusCode, b)
	}
}

// emfileListener fails every Accept with EMFILE, as a process out of file
// descriptors does, and counts the attempts.
type emfileListener struct {
	net.Listener
	calls atomic.Int64
}

func (l *emfileListener) Accept() (net.Conn, error) {
	l.calls.Add(1)
	return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
}

// TestAcceptBacksOffOutOfDescriptors: out of file descriptors, the accept
// loop pauses (doubling up to a second) instead of spinning, warns once
// through slog, and returns at once when the listener is closed.
func TestAcceptBacksOffOutOfDescriptors(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := &emfileListener{Listener: inner}
	var logged strings.Builder
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logged.Write(p)
	}), nil))
	ll := newLimitListener(fl, 8, log)
	done := make(chan error, 1)
	go func() {
		_, err := ll.Accept()
		done <- err
	}()
	time.Sleep(400 * time.Millisecond)
	ll.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept after Close: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Accept still pausing 2 s after Close")
	}
	// 5+10+20+40+80+160 ms: about 7 attempts in 400 ms; a spin makes
	// hundreds of thousands.
	if n := fl.calls.Load(); n > 20 {
		t.Fatalf("%d accept attempts in 400 ms out of descriptors: the loop spins", n)
	}
	mu.Lock()
	got := logged.String()
	mu.Unlock()
	if strings.Count(got, "out of file descriptors") != 1 || !strings.Contains(got, "component=http") {
		t.Fatalf("want one rate-limited warning through slog, got %q", got)
	}
}
