package doctor

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

const healthyBody = `{"ok":true,"status":"ok","waMode":"active","lockStatus":"held_by_this_instance","accounts_total":1,"connected":1,"needs_qr":0,"sessions_dir_writable":true}`

func daemonEnv(t *testing.T, h http.Handler) *Env {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	env := testEnv(t, nil)
	env.Offline = false
	env.BaseURL = srv.URL
	return env
}

// fakeDaemon answers the routes; /health is delegated to health.
func fakeDaemon(health http.HandlerFunc) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/health", health)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"status":"ok"}`) })
	mux.HandleFunc("/ready", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"ready":true,"mode":"active","reason":"lease held"}`)
	})
	mux.HandleFunc("/api/status/dashboard", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"total":2,"connected":1,"needs_qr":1,"accounts":[`+
			`{"accountId":"account_prod_a","state":"connected","isStale":false},`+
			`{"accountId":"account_prod_b","state":"needs_qr","isStale":false}]}`)
	})
	return mux
}

func TestHealthBurstRateLimited(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	env := daemonEnv(t, fakeDaemon(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) > 20 {
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprint(w, `{"error":"rate_limited"}`)
			return
		}
		fmt.Fprint(w, healthyBody)
	}))
	r := runCheck(t, env, "daemon.burst")
	wantStatus(t, r, Fail, "10 rate limited")
	if evidence(r, "burst") != `{"200":20,"429":10}` {
		t.Fatal(r.Evidence)
	}
}

func TestHealthHangs(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	defer close(release)
	env := daemonEnv(t, fakeDaemon(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	env.BurstN = 5
	r := runCheck(t, env, "daemon.http")
	wantStatus(t, r, Fail, "/health")
	r = runCheck(t, env, "daemon.burst")
	wantStatus(t, r, Fail, "0 of 5 answered 200")
	if evidence(r, "burst") != `{"timeout":5}` {
		t.Fatal(r.Evidence)
	}
}

func TestDaemonHealthyFake(t *testing.T) {
	t.Parallel()
	env := daemonEnv(t, fakeDaemon(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, healthyBody) }))
	wantStatus(t, runCheck(t, env, "daemon.http"), OK, "/health 200")
	wantStatus(t, runCheck(t, env, "daemon.burst"), OK, "30/30")
	r := runCheck(t, env, "daemon.accounts")
	wantStatus(t, r, Warn, "1 account(s) need a new QR: account_prod_b")
	if fixCommands(r) != "wactl pair --account account_prod_b\n" {
		t.Fatal(fixCommands(r))
	}
}

func TestDaemonSessionsNotWritable(t *testing.T) {
	t.Parallel()
	env := daemonEnv(t, fakeDaemon(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(503)
		fmt.Fprint(w, `{"ok":false,"sessions_dir_writable":false,"warnings":["sessions directory is not writable"]}`)
	}))
	wantStatus(t, runCheck(t, env, "daemon.http"), Fail, "/health answered 503")
}

func TestDaemonDown(t *testing.T) {
	t.Parallel()
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	env := testEnv(t, nil)
	env.Offline = false
	env.BaseURL = "http://" + addr
	r := runCheck(t, env, "daemon.http")
	wantStatus(t, r, Fail, "daemon not listening on")
	if evidence(r, "listening") != "NO" {
		t.Fatal(r.Evidence)
	}
	wantStatus(t, runCheck(t, env, "daemon.burst"), Skip, "not reachable")
	wantStatus(t, runCheck(t, env, "daemon.accounts"), Skip, "not reachable")
}

func TestOfflineSkipsNetwork(t *testing.T) {
	t.Parallel()
	env := testEnv(t, nil)
	rep := Run(context.Background(), env, Checks())
	for _, c := range rep.Checks {
		if c.Name == "daemon.http" && c.Status != Skip {
			t.Fatalf("offline ran %s: %+v", c.Name, c)
		}
	}
}

func TestPanicAndHangReported(t *testing.T) {
	t.Parallel()
	env := testEnv(t, nil)
	rep := Run(context.Background(), env, []Check{
		{Name: "boom", Run: func(context.Context, *Env) Result { panic("kaboom") }},
		{Name: "stuck", Timeout: 50 * time.Millisecond, Run: func(context.Context, *Env) Result { select {} }},
		{Name: "fine", Run: func(context.Context, *Env) Result { return Result{Status: OK, Summary: "fine"} }},
	})
	wantStatus(t, rep.Checks[0], Fail, "panicked: kaboom")
	wantStatus(t, rep.Checks[1], Fail, "hung")
	wantStatus(t, rep.Checks[2], OK, "fine")
	if rep.Verdict != "PROBLEMS" || len(rep.Blocking) != 2 {
		t.Fatalf("%s %v", rep.Verdict, rep.Blocking)
	}
}

func TestRestartTestSequence(t *testing.T) {
	t.Parallel()
	var up atomic.Bool
	up.Store(true)
	env := daemonEnv(t, fakeDaemon(func(w http.ResponseWriter, r *http.Request) {
		if !up.Load() {
			w.WriteHeader(503)
			fmt.Fprint(w, `{"ok":false}`)
			return
		}
		fmt.Fprint(w, healthyBody)
	}))
	var calls []string
	pid := "100"
	cannedSystemctl(env, "", &calls)
	env.Run = func(_ context.Context, name string, args ...string) ([]byte, error) {
		calls = append(calls, name+" "+args[0])
		switch args[0] {
		case "restart":
			up.Store(false)
			pid = "200"
			time.AfterFunc(300*time.Millisecond, func() { up.Store(true) })
		case "show":
			return []byte("LoadState=loaded\nActiveState=active\nMainPID=" + pid + "\n"), nil
		}
		return nil, nil
	}
	rep := Run(context.Background(), env, []Check{RestartCheck(5 * time.Second)})
	r := rep.Checks[0]
	wantStatus(t, r, OK, "connected again without QR")
	if evidence(r, "MainPID") != "100 → 200" || fmt.Sprint(calls) != "[systemctl show systemctl restart systemctl show]" {
		t.Fatalf("%v %v", r.Evidence, calls)
	}
}

func TestStoreEmbedded(t *testing.T) {
	t.Parallel()
	env := testEnv(t, nil)
	path := env.Config.Store.Path
	wantStatus(t, runCheck(t, env, "store.local"), Warn, "not created yet")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE t(x); INSERT INTO t VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	// The default is bounded and says how to run the full scan.
	wantStatus(t, runCheck(t, env, "store.local"), OK, "wactl doctor --deep")
	deep := env.Fresh()
	deep.Deep = true
	wantStatus(t, runCheck(t, deep, "store.local"), OK, "passes PRAGMA quick_check")

	// A truncated file is caught without reading it all.
	trunc := filepath.Join(t.TempDir(), "trunc.db")
	b0, _ := os.ReadFile(path)
	os.WriteFile(trunc, b0[:len(b0)-100], 0o600)
	env.Config.Store.Path = trunc
	wantStatus(t, runCheck(t, env.Fresh(), "store.local"), Fail, "whole number")
	env.Config.Store.Path = path

	bad := filepath.Join(t.TempDir(), "bad.db")
	b, _ := os.ReadFile(path)
	for i := 100; i < len(b); i += 7 {
		b[i] ^= 0x5a
	}
	os.WriteFile(bad, b, 0o600)
	env.Config.Store.Path = bad
	wantStatus(t, runCheck(t, env.Fresh(), "store.local"), Fail, "integrity")
}
