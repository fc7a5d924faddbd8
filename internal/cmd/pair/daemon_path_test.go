package pair_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paircmd "github.com/wactl/wactl/internal/cmd/pair"
	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/watest"
	"github.com/wactl/wactl/internal/watest/child"
	"github.com/wactl/wactl/pkg/dedupe"
	"github.com/wactl/wactl/pkg/pair"
)

type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// startServe runs `wactl serve` on e's data dir in a child process, so
// that wactl pair goes through its admin socket.
func startServe(t *testing.T, e *env) *lockedLog {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	c := exec.Command(os.Args[0], "serve")
	c.Env = append([]string{child.Env, "PATH=" + os.Getenv("PATH"), "HOME=" + e.dataDir, "STATE_DIRECTORY=" + e.dataDir,
		fmt.Sprintf("PORT=%d", port), "INSTANCE_ID=host-a"}, e.srv.Env()...)
	log := &lockedLog{}
	c.Stdout, c.Stderr = log, log
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { c.Wait(); close(done) }()
	t.Cleanup(func() {
		c.Process.Kill()
		<-done
		if t.Failed() {
			log.mu.Lock()
			t.Logf("wactl serve:\n%s", log.b.String())
			log.mu.Unlock()
		}
	})
	watest.Eventually(t, 15*time.Second, "serve ACTIVE with its admin socket", func() bool {
		if _, err := os.Stat(filepath.Join(e.dataDir, "wactl.sock")); err != nil {
			return false
		}
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/health", port))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var m map[string]any
		return json.NewDecoder(resp.Body).Decode(&m) == nil && m["waMode"] == "active"
	})
	return log
}

// TestPairThroughDaemonFailures runs the local path's failure tests
// through a running daemon: the real cause is reported, and no account is
// left behind (issue 17 item 2: the daemon left unpaired/needs_qr
// accounts and said "Nothing was kept").
func TestPairThroughDaemonFailures(t *testing.T) {
	e := newEnv(t, wafake.Options{QRRefs: 2, PairTimeout: 300 * time.Millisecond})
	serveLog := startServe(t, e)
	viaDaemon := func(t *testing.T, phone string) {
		t.Helper()
		id, _ := dedupe.AccountID("prod", phone, "40")
		// The child's log reaches us through a pipe: wait for it.
		watest.Eventually(t, 5*time.Second, id+" in the daemon's log", func() bool {
			serveLog.mu.Lock()
			defer serveLog.mu.Unlock()
			return strings.Contains(serveLog.b.String(), "account="+id)
		})
	}
	// "Nothing was kept" is true when wactl pair returns, not later.
	nothingLeft := func(t *testing.T) {
		t.Helper()
		assertNoAccounts(t, e)
	}

	t.Run("wrong phone", func(t *testing.T) {
		sc := &scanner{t: t, srv: e.srv, phone: "40733999998"}
		err, _ := e.run(t, context.Background(), sc, paircmd.Options{Phone: "+40733000012"})
		viaDaemon(t, "40733000012")
		if got := outcome(t, sc); err == nil || got.Outcome != pair.OutcomeRefused {
			t.Fatalf("outcome %+v, %v", got, err)
		}
		nothingLeft(t)
	})
	t.Run("expired", func(t *testing.T) {
		sc := &scanner{t: t, srv: e.srv}
		err, _ := e.run(t, context.Background(), sc, paircmd.Options{Phone: "+40733000013"})
		viaDaemon(t, "40733000013")
		if got := outcome(t, sc); err == nil || got.Outcome != pair.OutcomeExpired {
			t.Fatalf("outcome %+v, %v", got, err)
		}
		nothingLeft(t)
	})
	t.Run("ctrl-c", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		sc := &scanner{t: t, srv: e.srv, cancel: cancel}
		err, _ := e.run(t, ctx, sc, paircmd.Options{Phone: "+40733000014"})
		viaDaemon(t, "40733000014")
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("want cancellation, got %v", err)
		}
		nothingLeft(t)
	})
	t.Run("WhatsApp refuses connections", func(t *testing.T) {
		e.srv.RefuseConnections(time.Minute)
		defer e.srv.RefuseConnections(0)
		sc := &scanner{t: t, srv: e.srv}
		start := time.Now()
		err, _ := e.run(t, context.Background(), sc, paircmd.Options{Phone: "+40733000015"})
		viaDaemon(t, "40733000015")
		got := outcome(t, sc)
		t.Logf("after %v: %+v", time.Since(start).Round(time.Millisecond), got)
		if err == nil || got.Outcome != pair.OutcomeError || !strings.Contains(got.Error, "503") {
			t.Fatalf("outcome %+v, %v: want the connection error", got, err)
		}
		nothingLeft(t)
	})
}
