// Package scale measures how far one host goes (issue 21 item 3): N paired
// accounts on the fake WhatsApp server restored by one `wactl serve` child,
// its RSS, idle CPU, file descriptors, goroutines and SQLite files, and
// /health and the dashboard under wrk against a bare net/http handler
// (bench/barehttp) in the same run. bench/scale.sh runs it; figures are in
// docs/performance.md.
package scale

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wactl/wactl/bench/internal/benchd"
	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/watest"
	"github.com/wactl/wactl/internal/watest/child"
)

func TestMain(m *testing.M) {
	child.Run()
	os.Exit(fsemu.Main(m))
}

func envInt(k string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(k)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkScale: WACTL_BENCH_ACCOUNTS accounts (default 200), restored by
// a child `wactl serve` (embedded store); WACTL_BENCH_IDLE_SECS (default
// 20) of idle CPU; WACTL_BENCH_WRK_SECS (default 5) of wrk per target.
// Run with -benchtime 1x.
func BenchmarkScale(b *testing.B) {
	n := envInt("WACTL_BENCH_ACCOUNTS", 200)
	idle := time.Duration(envInt("WACTL_BENCH_IDLE_SECS", 20)) * time.Second
	wrkSecs := envInt("WACTL_BENCH_WRK_SECS", 5)
	srv, err := wafake.New(wafake.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	dataDir := b.TempDir()
	t0 := time.Now()
	benchd.PairAccounts(b, srv, dataDir, n, "4077")
	b.Logf("paired %d accounts in %s (setup, not timed); load %s", n, time.Since(t0).Round(time.Millisecond), benchd.Loadavg())
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		d := benchd.Start(b, srv, dataDir)
		pid := d.Cmd.Process.Pid
		var connected time.Duration
		watest.Eventually(b, 120*time.Second, "all connected", func() bool {
			m := d.Health()
			if m != nil && m["connected"] == float64(n) {
				connected = time.Since(start)
				return true
			}
			return false
		})
		rssConnected := status(pid)["VmRSS"]
		// The start-up trim runs 5 s after listening; let it and the
		// first keepalives pass before sampling the idle process.
		time.Sleep(max(0, 10*time.Second-time.Since(start)))
		cpu0, self0, w0 := cpuTicks(pid), cpuTicks(os.Getpid()), time.Now()
		time.Sleep(idle)
		cpu1, self1, wall := cpuTicks(pid), cpuTicks(os.Getpid()), time.Since(w0)
		idlePct := 100 * float64(cpu1-cpu0) / 100 / wall.Seconds() // CLK_TCK 100
		fakePct := 100 * float64(self1-self0) / 100 / wall.Seconds()
		st := status(pid)
		fds, dbFiles := fdCounts(pid)
		met := d.Metrics()
		b.Logf("%d accounts: all connected %.2fs after spawn; RSS %.1f MB at that moment, %.1f MB idle (%s after spawn; RssAnon %.1f, RssFile %.1f); "+
			"idle CPU %.2f%% of one core over %s (the fake server and this process: %.2f%%); fds %d (%d SQLite files incl. -wal/-shm; limit %s); "+
			"goroutines %g, threads %s; load %s",
			n, connected.Seconds(), kb(rssConnected), kb(st["VmRSS"]), time.Since(start).Round(time.Second), kb(st["RssAnon"]), kb(st["RssFile"]),
			idlePct, wall.Round(time.Second), fakePct, fds, dbFiles, fdLimit(pid), met["go_goroutines"], strconv.Itoa(int(st["Threads"])), benchd.Loadavg())
		b.ReportMetric(connected.Seconds(), "s-to-all-connected")
		b.ReportMetric(kb(st["VmRSS"]), "MB-RSS-idle")
		b.ReportMetric(idlePct, "%CPU-idle")
		b.ReportMetric(float64(fds), "fds")
		b.ReportMetric(met["go_goroutines"], "goroutines")
		if wrkSecs > 0 {
			wrkCompare(b, d.URL, wrkSecs)
		}
		b.ReportMetric(float64(n), "accounts")
		d.Stop(b)
	}
}

func kb(v float64) float64 { return v / 1024 }

// status reads the kB and count fields of /proc/PID/status.
func status(pid int) map[string]float64 {
	out := map[string]float64{}
	raw, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(raw), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) > 0 {
			if x, err := strconv.ParseFloat(f[0], 64); err == nil {
				out[k] = x
			}
		}
	}
	return out
}

// cpuTicks is utime+stime of a process, in clock ticks.
func cpuTicks(pid int) int64 {
	raw, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return u + st
}

func fdCounts(pid int) (all, db int) {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		all++
		if t, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && regexp.MustCompile(`\.db(-wal|-shm)?$`).MatchString(t) {
			db++
		}
	}
	return all, db
}

func fdLimit(pid int) string {
	raw, _ := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	for _, l := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(l, "Max open files") {
			f := strings.Fields(l)
			return f[3] + " soft / " + f[4] + " hard"
		}
	}
	return "?"
}

// wrkCompare: wrk -t2 -c50 on the bare handler, wactl's /health and the
// dashboard, one after the other in this run.
func wrkCompare(b *testing.B, url string, secs int) {
	if _, err := exec.LookPath("wrk"); err != nil {
		b.Logf("wrk not installed (apt-get install wrk): /health and dashboard throughput not measured")
		return
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	bare := filepath.Join(b.TempDir(), "bare")
	if out, err := exec.Command("go", "build", "-C", root, "-o", bare, "./bench/barehttp").CombinedOutput(); err != nil {
		b.Fatalf("building bench/barehttp: %v\n%s", err, out)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", benchd.FreePort(b))
	bp := exec.Command(bare, "-addr", addr)
	if err := bp.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { bp.Process.Kill(); bp.Wait() }()
	time.Sleep(300 * time.Millisecond)
	run := func(u string) (float64, string) {
		out, err := exec.Command("wrk", "-t2", "-c50", fmt.Sprintf("-d%ds", secs), "--latency", u).CombinedOutput()
		if err != nil {
			b.Fatalf("wrk %s: %v\n%s", u, err, out)
		}
		var rps float64
		p99 := "?"
		for _, l := range strings.Split(string(out), "\n") {
			f := strings.Fields(l)
			if len(f) >= 2 && f[0] == "Requests/sec:" {
				rps, _ = strconv.ParseFloat(f[1], 64)
			}
			if len(f) >= 2 && f[0] == "99%" {
				p99 = f[1]
			}
			if bytes.Contains([]byte(l), []byte("Non-2xx")) {
				b.Logf("wrk %s: %s", u, l)
			}
		}
		return rps, p99
	}
	rb, pb := run("http://" + addr + "/health")
	rh, ph := run(url + "/health")
	rd, pd := run(url + "/api/status/dashboard")
	b.Logf("wrk -t2 -c50 %ds: bare %.0f req/s (p99 %s) | wactl /health %.0f req/s (p99 %s) = %.2f× bare | dashboard %.0f req/s (p99 %s) = %.2f× bare; load %s",
		secs, rb, pb, rh, ph, rh/rb, rd, pd, rd/rb, benchd.Loadavg())
	b.ReportMetric(rh/rb, "health/bare")
	b.ReportMetric(rd/rb, "dashboard/bare")
}
