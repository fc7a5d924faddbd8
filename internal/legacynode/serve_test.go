package legacynode_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/internal/legacynode"
	"github.com/wactl/wactl/internal/watest/child"
)

// serveProc is a real `wactl serve` child (this test binary re-executed).
type serveProc struct {
	cmd    *exec.Cmd
	url    string
	mu     sync.Mutex
	stderr bytes.Buffer
	exited chan struct{}
}

func (p *serveProc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.Write(b)
}

func startServe(t *testing.T, project, dataDir, instance string) *serveProc {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	c := exec.Command(os.Args[0], "serve")
	c.Env = []string{child.Env, "PATH=" + os.Getenv("PATH"), "HOME=" + dataDir, "STATE_DIRECTORY=" + dataDir,
		fmt.Sprintf("PORT=%d", port), "INSTANCE_ID=" + instance, "WACTL_STORE_BACKEND=firestore",
		"GOOGLE_CLOUD_PROJECT=" + project, "FIRESTORE_EMULATOR_HOST=" + fsemu.Host(t),
		"WACTL_LOCK_TTL=2s", "WACTL_LOCK_RENEW_INTERVAL=500ms", "WACTL_LOCK_SAFETY_MARGIN=500ms", "WACTL_LOCK_RETRY_INTERVAL=200ms"}
	c.Dir = dataDir
	p := &serveProc{cmd: c, url: fmt.Sprintf("http://127.0.0.1:%d", port), exited: make(chan struct{})}
	c.Stderr = p
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = c.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		_ = c.Process.Kill()
		<-p.exited
		if t.Failed() {
			p.mu.Lock()
			t.Logf("wactl serve (%s) log:\n%s", instance, p.stderr.String())
			p.mu.Unlock()
		}
	})
	return p
}

func (p *serveProc) get(path string) map[string]any {
	resp, err := http.Get(p.url + path)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return m
}

func (p *serveProc) kill9() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// watch samples both sides every 25 ms and records their ACTIVE spans.
func watch(t *testing.T, rec *recorder, node *legacynode.Lock, serve func() *serveProc) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if p := serve(); p != nil {
				if m := p.get("/health"); m != nil {
					if m["waMode"] == "active" {
						if !rec.isActive("wactl") {
							rec.on("wactl")
						}
					} else if rec.isActive("wactl") {
						rec.off("wactl")
					}
				}
			}
			time.Sleep(25 * time.Millisecond)
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

// TestServeBesideOldServiceSameID runs issue 15.1's sequence with real
// `wactl serve` processes and the old service's lock protocol, both with
// instance id "vm": the old service holds; wactl waits; the old service
// stops (lease left behind) and wactl takes over after it runs out; wactl is
// killed (-9: its fields stay); the old service takes the expired lease over
// with a merge; wactl restarts on the same data dir — and must stay PASSIVE
// (it used to reclaim "the lease of an earlier process of this instance").
func TestServeBesideOldServiceSameID(t *testing.T) {
	if testing.Short() {
		t.Skip("child processes")
	}
	c, project := fsemu.NewClient(t)
	_, _ = c.Doc("warmup/x").Get(context.Background())
	dataDir := t.TempDir()
	rec := newRecorder()
	var mu sync.Mutex
	var cur *serveProc
	current := func() *serveProc { mu.Lock(); defer mu.Unlock(); return cur }
	setCur := func(p *serveProc) { mu.Lock(); cur = p; mu.Unlock() }

	node, stopNode := startNode(t, c, "vm", "node", rec)
	waitFor(t, 20*time.Second, "old service ACTIVE", node.Active)
	setCur(startServe(t, project, dataDir, "vm"))
	stopWatch := watch(t, rec, node, current)
	waitFor(t, 30*time.Second, "wactl serve answers", func() bool { return current().get("/health") != nil })
	time.Sleep(2 * node.Renew())
	if rec.isActive("wactl") {
		t.Fatal("wactl ACTIVE while the old service holds its lease under the same id")
	}
	ready := current().get("/ready")
	if ready["heldBy"] != "vm" || strings.Contains(fmt.Sprint(ready["reason"]), "pid") {
		t.Fatalf("/ready while the old service holds: %v", ready)
	}
	stopNode()
	waitFor(t, node.Lease()+10*time.Second, "wactl ACTIVE after the old lease ran out", func() bool { return rec.isActive("wactl") })

	current().kill9()
	rec.off("wactl")
	node2, _ := startNode(t, c, "vm", "node-2", rec)
	waitFor(t, 10*time.Second, "old service ACTIVE after the dead wactl's lease expired", node2.Active)
	setCur(startServe(t, project, dataDir, "vm"))
	waitFor(t, 30*time.Second, "restarted wactl serve answers", func() bool { return current().get("/health") != nil })
	time.Sleep(3 * node2.Renew())
	stopWatch()
	if o := rec.overlaps(); len(o) > 0 {
		t.Fatalf("two ACTIVE: %v", o)
	}
	if rec.isActive("wactl") {
		t.Fatal("restarted wactl reclaimed the old service's lease")
	}
	ready = current().get("/ready")
	if ready["heldBy"] != "vm" || ready["mode"] != "passive" || strings.Contains(fmt.Sprint(ready["reason"]), "pid") {
		t.Fatalf("/ready after restart: %v", ready)
	}
}

// TestServeFirstBesideOldServiceSameID is issue 15.1's other order with a
// real `wactl serve`: wactl ACTIVE first with instance id "vm", then the
// old service with the same id. The old service must never be ACTIVE
// while wactl holds (wactl's holder is "wactl:vm", not its own "vm"); the
// app sees the holder as written. After wactl's graceful stop (release)
// the old service takes over by its own rule, and a restarted wactl waits.
func TestServeFirstBesideOldServiceSameID(t *testing.T) {
	if testing.Short() {
		t.Skip("child processes")
	}
	c, project := fsemu.NewClient(t)
	_, _ = c.Doc("warmup/x").Get(context.Background())
	dataDir := t.TempDir()
	rec := newRecorder()
	var mu sync.Mutex
	var cur *serveProc
	current := func() *serveProc { mu.Lock(); defer mu.Unlock(); return cur }
	setCur := func(p *serveProc) { mu.Lock(); cur = p; mu.Unlock() }

	setCur(startServe(t, project, dataDir, "vm"))
	waitFor(t, 30*time.Second, "wactl serve ACTIVE", func() bool {
		m := current().get("/health")
		return m != nil && m["waMode"] == "active"
	})
	stopWatch := watch(t, rec, nil, current)
	health, ready := current().get("/health"), current().get("/ready")
	if health["lockHolder"] != "wactl:vm" || health["instanceId"] != "vm" || health["lockStatus"] != "held_by_this_instance" ||
		ready["heldBy"] != "wactl:vm" || ready["instanceId"] != "vm" {
		t.Fatalf("what the app sees while wactl holds: /health %v /ready %v", health, ready)
	}
	node, _ := startNode(t, c, "vm", "node", rec)
	stopSampling := neverActive(node, func() bool { return rec.isActive("wactl") })
	time.Sleep(3*node.Renew() + node.Retry())
	if hits := stopSampling(); hits > 0 || node.Active() || !rec.isActive("wactl") {
		t.Fatalf("old service ACTIVE (its own view) in %d samples beside wactl; overlaps %v", hits, rec.overlaps())
	}
	stopWatch()
	p := current()
	_ = p.cmd.Process.Signal(syscall.SIGTERM) // graceful: releases the lease
	<-p.exited
	rec.off("wactl")
	waitFor(t, 2*node.Retry()+5*time.Second, "old service ACTIVE after wactl stopped", node.Active)
	d, err := c.Doc(legacynode.DocPath).Get(context.Background())
	if err != nil || d.Data()["holderInstanceId"] != "vm" || d.Data()["previousHolder"] != "wactl:vm" {
		t.Fatalf("after the old service's takeover: %v %v", d.Data(), err)
	}
	setCur(startServe(t, project, dataDir, "vm"))
	stopWatch = watch(t, rec, nil, current)
	waitFor(t, 30*time.Second, "restarted wactl serve answers", func() bool { return current().get("/health") != nil })
	time.Sleep(2 * node.Renew())
	stopWatch()
	if o := rec.overlaps(); len(o) > 0 {
		t.Fatalf("two ACTIVE: %v", o)
	}
	if ready := current().get("/ready"); ready["heldBy"] != "vm" || ready["mode"] != "passive" {
		t.Fatalf("/ready while the old service holds: %v", ready)
	}
}
