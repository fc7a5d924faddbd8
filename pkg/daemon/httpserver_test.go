package daemon

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startLimited serves h the way Run does (server, deadlines, connection
// cap) on a loopback port.
func startLimited(t *testing.T, maxConns int, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := newHTTPServer(h, slog.New(slog.DiscardHandler))
	go srv.Serve(newLimitListener(ln, maxConns, slog.New(slog.DiscardHandler)))
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func shortBodyTimeout(t *testing.T, d time.Duration) {
	saved := bodyTimeout
	bodyTimeout = d
	t.Cleanup(func() { bodyTimeout = saved })
}

// TestSlowBodyIsCutOff: a client that declares a body and never sends it
// loses its connection after bodyTimeout (today: held open forever).
func TestSlowBodyIsCutOff(t *testing.T) {
	shortBodyTimeout(t, 300*time.Millisecond)
	addr := startLimited(t, 8, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "slow body", http.StatusRequestTimeout)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
	start := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.ReadAll(c) // the answer, if any, then EOF when the server closes
	if err != nil {
		t.Fatalf("connection still open 5 s after a stalled body: %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("closed after %s, want about %s", took, bodyTimeout)
	}
}

// TestLongHandlerOutlivesBodyTimeout: once the body is in, a handler that
// works longer than bodyTimeout keeps its context and answers.
func TestLongHandlerOutlivesBodyTimeout(t *testing.T) {
	shortBodyTimeout(t, 200*time.Millisecond)
	addr := startLimited(t, 8, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			t.Errorf("body: %v", err)
		}
		select {
		case <-time.After(700 * time.Millisecond):
			io.WriteString(w, "done")
		case <-r.Context().Done():
			t.Errorf("handler context cancelled: %v", r.Context().Err())
		}
	}))
	resp, err := http.Post("http://"+addr+"/send", "application/json", strings.NewReader(`{"a":1}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "done" {
		t.Fatalf("answer %q", b)
	}
}

// TestConnectionCapKeepsHealthAnswering: with every general slot taken by
// a running handler, a new connection still gets /health, is refused
// other routes with 503, and is closed after its answer.
func TestConnectionCapKeepsHealthAnswering(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	var running sync.WaitGroup
	addr := startLimited(t, 2, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/busy" {
			running.Done()
			<-release
		}
		io.WriteString(w, "ok "+r.URL.Path)
	}))
	for range 2 { // hold both general slots with running handlers
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		running.Add(1)
		fmt.Fprint(c, "GET /busy HTTP/1.1\r\nHost: x\r\n\r\n")
	}
	running.Wait()
	get := func(path string) (int, string) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		defer resp.Body.Close()
		if !resp.Close {
			t.Errorf("%s: a reserved connection must be closed after its answer", path)
		}
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
	if code, _ := get("/health"); code != http.StatusOK {
		t.Fatalf("/health over the cap: %d", code)
	}
	if code, ra := get("/api/whatsapp/accounts"); code != http.StatusServiceUnavailable || ra == "" {
		t.Fatalf("API over the cap: %d Retry-After %q", code, ra)
	}
}

// TestConnBudgetStaysUnderTheFDLimit: the cap plus the reserved slots
// leave at least a quarter of this process's fd limit to everything else.
func TestConnBudgetStaysUnderTheFDLimit(t *testing.T) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Skip(err)
	}
	n := connBudget(1 << 20)
	if limit := int(rl.Cur); limit < 1<<30 && n+reservedConns > limit*3/4 {
		t.Fatalf("budget %d + %d reserved with an fd limit of %d", n, reservedConns, limit)
	}
	if n := connBudget(5); n != 8 {
		t.Fatalf("a tiny configured cap is raised to 8, got %d", n)
	}
}

// TestServerErrorsGoThroughSlog: what net/http logs itself (here a
// handler's panic) reaches the daemon's slog logger with component=http,
// not the standard logger.
func TestServerErrorsGoThroughSlog(t *testing.T) {
	var buf strings.Builder
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	}), nil))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := newHTTPServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }), log)
	go srv.Serve(ln)
	defer srv.Close()
	if resp, err := http.Get("http://" + ln.Addr().String() + "/"); err == nil {
		resp.Body.Close()
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		mu.Lock()
		got := buf.String()
		mu.Unlock()
		if strings.Contains(got, "panic serving") {
			if !strings.Contains(got, "component=http") || !strings.Contains(got, "level=WARN") {
				t.Fatalf("server error without component/level: %s", got)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server's panic log did not reach slog: %q", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
