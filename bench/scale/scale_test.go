// Package scale measures how far one host goes (issue 21 item 3): N paired
// accounts on the fake WhatsApp server restored by one `wactl serve` child,
// its RSS, idle CPU, file descriptors, goroutines and SQLite files, and
// /health and the dashboard under wrk against a bare net/http handler
// (bench/barehttp) in the same run. bench/scale.sh runs it; figures are in
// docs/performance.md.
package scale

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wactl/wactl/bench/internal/benchd"
	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/watest"
	"github.com/wactl/wactl/internal/watest/child"
	"github.com/wactl/wactl/pkg/dedupe"
	"github.com/wactl/wactl/pkg/sessions"
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
// WACTL_BENCH_ACCOUNTS may list increasing counts ("500,1000,2000"): the
// accounts are paired once, adding to them between steps, and the sweep
// stops after the first count where restore takes more than 10 s or RSS
// passes 1 GB (issue 21's break point; WACTL_BENCH_PAST_BREAK=1 goes on
// through the list). Run with -benchtime 1x.
func BenchmarkScale(b *testing.B) {
	var counts []int
	for _, f := range strings.Split(os.Getenv("WACTL_BENCH_ACCOUNTS"), ",") {
		if v, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && v > 0 {
			counts = append(counts, v)
		}
	}
	if len(counts) == 0 {
		counts = []int{200}
	}
	idle := time.Duration(envInt("WACTL_BENCH_IDLE_SECS", 20)) * time.Second
	wrkSecs := envInt("WACTL_BENCH_WRK_SECS", 5)
	if os.Getenv("WACTL_BENCH_WRK_SECS") == "0" {
		wrkSecs = 0 // restore, memory and idle CPU only
	}
	srv, err := wafake.New(wafake.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	dataDir := b.TempDir()
	sess, err := sessions.Open(filepath.Join(dataDir, "sessions"), sessions.Options{})
	if err != nil {
		b.Fatal(err)
	}
	paired := 0
	b.ResetTimer()
	for _, n := range counts {
		if n > paired {
			b.StopTimer()
			t0 := time.Now()
			pairRange(b, srv, sess, paired, n)
			logf("paired accounts %d–%d in %s (setup, not timed; %d at a time); load %s", paired+1, n,
				time.Since(t0).Round(time.Millisecond), pairWorkers, benchd.Loadavg())
			paired = n
			b.StartTimer()
		}
		if broke := scaleOnce(b, srv, dataDir, n, idle, wrkSecs); broke && os.Getenv("WACTL_BENCH_PAST_BREAK") == "" {
			logf("%d accounts: past the break point (restore > 10 s or RSS > 1 GB); the sweep stops here", n)
			break
		}
	}
}

// pairWorkers pair accounts in parallel: the fake's handshakes and the
// session databases' writes overlap.
const pairWorkers = 4

// pairRange pairs accounts from+1..to on srv into sess (phones 4077NNNNNN).
func pairRange(b *testing.B, srv *wafake.Server, sess *sessions.Store, from, to int) {
	next := make(chan int)
	var wg sync.WaitGroup
	for range pairWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done() // also when Pair fails (it ends this goroutine)
			for i := range next {
				// A pairing that times out on a loaded machine is
				// purged and done again with another phone.
				var msg string
				for attempt, prefix := range []string{"4077", "4078", "4079"} {
					phone := fmt.Sprintf("%s%06d", prefix, i)
					if msg = tryPair(b, srv, sess, phone); msg == "" {
						break
					}
					logf("pairing %s failed (attempt %d): %s; purged, retrying with another phone", phone, attempt+1, msg)
					if id, err := dedupe.AccountID("prod", phone, "40"); err == nil {
						_, _ = sess.Remove(id, sessions.RemoveOptions{Purge: true})
					}
				}
				if msg != "" {
					b.Errorf("pairing account %d: %s", i, msg)
					return
				}
			}
		}()
	}
	for i := from; i < to && !b.Failed(); i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
}

// softTB turns watest.Pair's fatal errors into a returned message, so a
// pairing can be retried: Fatal ends only the goroutine that runs it.
type softTB struct {
	testing.TB
	msg string
}

func (s *softTB) Helper()                           {}
func (s *softTB) Error(args ...any)                 { s.Fatal(args...) }
func (s *softTB) Errorf(format string, args ...any) { s.Fatalf(format, args...) }
func (s *softTB) FailNow()                          { s.Fatal("FailNow") }
func (s *softTB) Fatal(args ...any)                 { s.msg = fmt.Sprint(args...); runtime.Goexit() }
func (s *softTB) Fatalf(format string, args ...any) {
	s.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// tryPair pairs phone, returning what went wrong ("" when paired).
func tryPair(b *testing.B, srv *wafake.Server, sess *sessions.Store, phone string) string {
	st := &softTB{TB: b}
	done := make(chan struct{})
	go func() {
		defer close(done)
		watest.Pair(st, srv, sess, phone)
	}()
	<-done
	return st.msg
}

// scaleOnce restores the n accounts of dataDir in a child `wactl serve`
// and measures it; broke reports the break point (restore > 10 s or RSS
// > 1 GB).
func scaleOnce(b *testing.B, srv *wafake.Server, dataDir string, n int, idle time.Duration, wrkSecs int) (broke bool) {
	for range b.N {
		self0 := cpuTicks(os.Getpid())
		busy0, total0 := machineTicks()
		start := time.Now()
		d := benchd.Start(b, srv, dataDir)
		pid := d.Cmd.Process.Pid
		var perf *exec.Cmd
		if dir := os.Getenv("WACTL_BENCH_PERF"); dir != "" {
			// The restore, sampled until all are connected.
			perf = exec.Command("perf", "record", "-q", "-F", "499", "-g", "-p", strconv.Itoa(pid), "-o", filepath.Join(dir, fmt.Sprintf("restore-%d.perf", n)))
			if err := perf.Start(); err != nil {
				logf("perf: %v", err)
				perf = nil
			}
		}
		var connected time.Duration
		watest.Eventually(b, 300*time.Second, "all connected", func() bool {
			m := d.Health()
			if m != nil && m["connected"] == float64(n) {
				connected = time.Since(start)
				return true
			}
			return false
		})
		rssConnected := status(pid)["VmRSS"]
		// Where the restore's time went: CPU of the daemon, of the fake
		// server (this process), and of the whole machine over it.
		restoreCPU, fakeCPU := cpuTicks(pid), cpuTicks(os.Getpid())-self0
		busy1, total1 := machineTicks()
		if perf != nil {
			_ = perf.Process.Signal(os.Interrupt)
			_ = perf.Wait()
		}
		logf("restore: %.2f s; CPU over it: wactl %.2f s, fake server and this process %.2f s, machine %.0f %% busy of %d cores; load %s",
			connected.Seconds(), float64(restoreCPU)/100, float64(fakeCPU)/100, 100*(busy1-busy0)/max(total1-total0, 1), runtime.NumCPU(), benchd.Loadavg())
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
		logf("%d accounts: all connected %.2fs after spawn; RSS %.1f MB at that moment, %.1f MB idle (%s after spawn; RssAnon %.1f, RssFile %.1f); "+
			"idle CPU %.2f%% of one core over %s (the fake server and this process: %.2f%%); fds %d (%d SQLite files incl. -wal/-shm; limit %s); "+
			"goroutines %g, threads %s; load %s",
			n, connected.Seconds(), kb(rssConnected), kb(st["VmRSS"]), time.Since(start).Round(time.Second), kb(st["RssAnon"]), kb(st["RssFile"]),
			idlePct, wall.Round(time.Second), fakePct, fds, dbFiles, fdLimit(pid), met["go_goroutines"], strconv.Itoa(int(st["Threads"])), benchd.Loadavg())
		// What the anonymous memory is: the Go runtime's (heap, stacks,
		// its own structures) and the rest, which is SQLite's (modernc's
		// C allocator maps its own memory, outside the Go heap).
		mib := func(bytes float64) float64 { return bytes / (1 << 20) }
		goSys, anon := mib(met["go_memstats_sys_bytes"]), kb(st["RssAnon"])
		logf("memory (MiB): RssAnon %.1f = Go runtime at most %.1f (heap in use %.1f, %.0f objects; stacks %.1f) + at least %.1f outside Go (SQLite); "+
			"per account: %.2f anonymous, %.3f Go heap, %.1f KiB stack, %.2f outside Go",
			anon, goSys, mib(met["go_memstats_heap_inuse_bytes"]), met["go_memstats_heap_objects"], mib(met["go_memstats_stack_inuse_bytes"]), anon-goSys,
			anon/float64(n), mib(met["go_memstats_heap_inuse_bytes"])/float64(n), mib(met["go_memstats_stack_inuse_bytes"])*1024/float64(n), (anon-goSys)/float64(n))
		b.ReportMetric(connected.Seconds(), "s-to-all-connected")
		b.ReportMetric(kb(st["VmRSS"]), "MB-RSS-idle")
		b.ReportMetric(idlePct, "%CPU-idle")
		b.ReportMetric(float64(fds), "fds")
		b.ReportMetric(met["go_goroutines"], "goroutines")
		if wrkSecs > 0 {
			// The same daemon with no accounts, as a reference: what
			// the HTTP server costs whatever the accounts.
			empty := benchd.Start(b, srv, b.TempDir())
			watest.Eventually(b, 30*time.Second, "empty daemon up", func() bool { return empty.Health() != nil })
			wrkCompare(b, d, empty, wrkSecs)
			empty.Stop(b)
		}
		b.ReportMetric(float64(n), "accounts")
		d.Stop(b)
		broke = broke || connected > 10*time.Second || kb(max(rssConnected, st["VmRSS"])) > 1000
	}
	return broke
}

func kb(v float64) float64 { return v / 1024 }

// logf prints a figure at once, with the time: the testing package keeps
// only the last lines a benchmark logs, and only at its end.
func logf(format string, args ...any) {
	fmt.Printf("%s %s\n", time.Now().UTC().Format("15:04:05"), fmt.Sprintf(format, args...))
}

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

// machineTicks is the busy and total time of all CPUs, from /proc/stat.
func machineTicks() (busy, total float64) {
	raw, _ := os.ReadFile("/proc/stat")
	line, _, _ := strings.Cut(string(raw), "\n")
	f := strings.Fields(line)
	for i, v := range f[1:] {
		x, _ := strconv.ParseFloat(v, 64)
		if i >= 8 { // guest time is counted in user already
			break
		}
		total += x
		if i != 3 && i != 4 { // idle, iowait
			busy += x
		}
	}
	return busy, total
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

// target is one wrk target of wrkCompare: a URL, extra wrk arguments,
// the process serving it (for its CPU time), and its /metrics when it is
// a wactl (for its garbage collections and allocations).
type target struct {
	name    string
	url     string
	args    []string
	pid     int
	metrics func() map[string]float64
}

// wrkResult is one wrk run: throughput, p99, and what the serving process
// spent per request.
type wrkResult struct {
	rps       float64
	p99       string
	cpuUS     float64 // CPU time of the serving process per request, µs
	gcs       float64 // garbage collections during the run (wactl only)
	allocB    float64 // bytes allocated per request (wactl only)
	wireBytes float64 // bytes read per request, headers included
}

// wrkCompare: wrk -t2 -c50 against a bare handler (bench/scale/barebody),
// wactl's /health, the /health of a second wactl with no accounts, the
// dashboard (plain and with Accept-Encoding: gzip), and the bare handler
// writing as many bytes as each dashboard answer, one after the other in
// this run, in rounds (WACTL_BENCH_WRK_ROUNDS, 3). Besides req/s each run
// reports the serving process's CPU time per request, which the load of a
// shared machine moves less than throughput. WACTL_BENCH_PERF=DIR with
// WACTL_BENCH_PERF_WRK=1 records `perf` profiles of the first round's runs
// there.
func wrkCompare(b *testing.B, d, empty *benchd.Daemon, secs int) {
	if _, err := exec.LookPath("wrk"); err != nil {
		logf("wrk not installed (apt-get install wrk): /health and dashboard throughput not measured")
		return
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	bare := filepath.Join(b.TempDir(), "bare")
	if out, err := exec.Command("go", "build", "-C", root, "-o", bare, "./bench/scale/barebody").CombinedOutput(); err != nil {
		b.Fatalf("building bench/scale/barebody: %v\n%s", err, out)
	}
	dashLen := bodyLen(b, d.URL+"/api/status/dashboard", "")
	gzLen := bodyLen(b, d.URL+"/api/status/dashboard", "gzip")
	logf("dashboard answer: %d bytes, %d with Accept-Encoding: gzip", dashLen, gzLen)
	addr := fmt.Sprintf("127.0.0.1:%d", benchd.FreePort(b))
	bp := exec.Command(bare, "-addr", addr, "-bytes", strconv.Itoa(dashLen), "-gzbytes", strconv.Itoa(gzLen))
	if err := bp.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { bp.Process.Kill(); bp.Wait() }()
	time.Sleep(300 * time.Millisecond)
	gzip := []string{"-H", "Accept-Encoding: gzip"}
	bareURL := "http://" + addr
	targets := []target{
		{name: "bare", url: bareURL + "/health", pid: bp.Process.Pid},
		{name: "health", url: d.URL + "/health", pid: d.Cmd.Process.Pid, metrics: d.Metrics},
		{name: "health0", url: empty.URL + "/health", pid: empty.Cmd.Process.Pid, metrics: empty.Metrics},
		{name: "dash", url: d.URL + "/api/status/dashboard", pid: d.Cmd.Process.Pid, metrics: d.Metrics},
		{name: "bareDash", url: bareURL + "/dashboard", pid: bp.Process.Pid},
		{name: "dashGz", url: d.URL + "/api/status/dashboard", args: gzip, pid: d.Cmd.Process.Pid, metrics: d.Metrics},
		{name: "bareGz", url: bareURL + "/dashgz", pid: bp.Process.Pid},
	}
	perfDir := os.Getenv("WACTL_BENCH_PERF")
	if os.Getenv("WACTL_BENCH_PERF_WRK") == "" {
		perfDir = "" // the restore only
	}
	// The load on a shared machine moves by more than the differences
	// measured, so each ratio is taken within its round (the targets in
	// a rotating order) and the median over the rounds is reported.
	rounds := envInt("WACTL_BENCH_WRK_ROUNDS", 3)
	load0 := benchd.Loadavg()
	res := map[string][]wrkResult{}
	for i := range rounds {
		line := fmt.Sprintf("round %d, wrk -t2 -c50 %ds:", i+1, secs)
		// Each round starts one target later, so that no target is
		// always first (or always next to the same one) in its round.
		order := append(slices.Clone(targets[i%len(targets):]), targets[:i%len(targets)]...)
		for _, t := range order {
			perf := ""
			if perfDir != "" && i == 0 {
				perf = filepath.Join(perfDir, t.name+".perf")
			}
			r := wrkRun(b, t, secs, perf)
			res[t.name] = append(res[t.name], r)
			line += fmt.Sprintf(" %s %.0f req/s (p99 %s, %.1f µs CPU/req", t.name, r.rps, r.p99, r.cpuUS)
			if t.metrics != nil {
				line += fmt.Sprintf(", %.0f GCs, %.0f B alloc/req", r.gcs, r.allocB)
			}
			line += fmt.Sprintf(", %.0f B/resp) |", r.wireBytes)
		}
		logf("%s load %s", line, benchd.Loadavg())
	}
	ratio := func(a, base string, f func(wrkResult) float64) float64 {
		var v []float64
		for i := range rounds {
			v = append(v, f(res[a][i])/f(res[base][i]))
		}
		return median(v)
	}
	rps := func(r wrkResult) float64 { return r.rps }
	cpu := func(r wrkResult) float64 { return r.cpuUS }
	rounded := func(a, base string) string {
		var v []string
		for i := range rounds {
			v = append(v, strconv.FormatFloat(res[a][i].rps/res[base][i].rps, 'f', 2, 64))
		}
		return strings.Join(v, " ")
	}
	logf("medians over %d rounds (req/s ratio; CPU per request ratio, lower is cheaper):\n"+
		"  /health %.2f× bare (rounds %s); CPU/req %.2f× bare\n"+
		"  /health with 0 accounts %.2f× bare (rounds %s); CPU/req %.2f× bare; /health with the accounts %.2f× with none\n"+
		"  dashboard, %d B: %.2f× bare (rounds %s), %.2f× bare writing as many bytes (rounds %s); CPU/req %.2f× the latter\n"+
		"  dashboard gzip, %d B: %.2f× bare (rounds %s), %.2f× bare writing as many bytes (rounds %s), %.2f× the plain dashboard; CPU/req %.2f× bare\n"+
		"load %s → %s",
		rounds,
		ratio("health", "bare", rps), rounded("health", "bare"), ratio("health", "bare", cpu),
		ratio("health0", "bare", rps), rounded("health0", "bare"), ratio("health0", "bare", cpu), ratio("health", "health0", rps),
		dashLen, ratio("dash", "bare", rps), rounded("dash", "bare"), ratio("dash", "bareDash", rps), rounded("dash", "bareDash"), ratio("dash", "bareDash", cpu),
		gzLen, ratio("dashGz", "bare", rps), rounded("dashGz", "bare"), ratio("dashGz", "bareGz", rps), rounded("dashGz", "bareGz"), ratio("dashGz", "dash", rps), ratio("dashGz", "bare", cpu),
		load0, benchd.Loadavg())
	b.ReportMetric(ratio("health", "bare", rps), "health/bare")
	b.ReportMetric(ratio("health", "bare", cpu), "health/bare-CPU/req")
	b.ReportMetric(ratio("dash", "bare", rps), "dashboard/bare")
	b.ReportMetric(ratio("dash", "bareDash", rps), "dashboard/bare-same-bytes")
	b.ReportMetric(ratio("dashGz", "bare", rps), "dashboard-gzip/bare")
	b.ReportMetric(ratio("health0", "bare", rps), "health-0-accounts/bare")
}

// bodyLen is the length of url's answer as sent, with Accept-Encoding
// set to enc when not empty (the transport then leaves it encoded).
func bodyLen(b *testing.B, url, enc string) int {
	req, _ := http.NewRequest("GET", url, nil)
	if enc != "" {
		req.Header.Set("Accept-Encoding", enc)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		b.Fatalf("%s: %d %s", url, resp.StatusCode, body)
	}
	return len(body)
}

// wrkRun runs wrk against t for secs seconds, measuring the serving
// process meanwhile; with perfOut, `perf record` samples it too.
func wrkRun(b *testing.B, t target, secs int, perfOut string) wrkResult {
	var m0 map[string]float64
	if t.metrics != nil {
		m0 = t.metrics()
	}
	var perf *exec.Cmd
	if perfOut != "" {
		perf = exec.Command("perf", "record", "-q", "-F", "499", "-g", "-p", strconv.Itoa(t.pid), "-o", perfOut, "--", "sleep", strconv.Itoa(secs))
		if err := perf.Start(); err != nil {
			logf("perf: %v", err)
			perf = nil
		}
	}
	c0 := cpuTicks(t.pid)
	args := append([]string{"-t2", "-c50", fmt.Sprintf("-d%ds", secs), "--latency"}, t.args...)
	out, err := exec.Command("wrk", append(args, t.url)...).CombinedOutput()
	if err != nil {
		b.Fatalf("wrk %s: %v\n%s", t.url, err, out)
	}
	c1 := cpuTicks(t.pid)
	if perf != nil {
		_ = perf.Wait()
	}
	var r wrkResult
	var n, read float64
	r.p99 = "?"
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) >= 2 && f[0] == "Requests/sec:":
			r.rps, _ = strconv.ParseFloat(f[1], 64)
		case len(f) >= 2 && f[0] == "99%":
			r.p99 = f[1]
		case len(f) >= 5 && f[1] == "requests" && f[2] == "in":
			n, _ = strconv.ParseFloat(f[0], 64)
			read = wrkBytes(f[4])
		case strings.Contains(l, "Non-2xx") || strings.Contains(l, "Socket errors"):
			logf("wrk %s: %s", t.url, l)
		}
	}
	if n > 0 {
		r.cpuUS = float64(c1-c0) * 10_000 / n // CLK_TCK 100: a tick is 10 ms
		r.wireBytes = read / n
		if m0 != nil {
			if m1 := t.metrics(); m1 != nil {
				r.gcs = m1["go_gc_duration_seconds_count"] - m0["go_gc_duration_seconds_count"]
				r.allocB = (m1["go_memstats_alloc_bytes_total"] - m0["go_memstats_alloc_bytes_total"]) / n
			}
		}
	}
	return r
}

// wrkBytes parses wrk's "12.34MB," into bytes.
func wrkBytes(s string) float64 {
	s = strings.TrimSuffix(s, ",")
	mult := 1.0
	for _, u := range []struct {
		suffix string
		m      float64
	}{{"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.m
			break
		}
	}
	v, _ := strconv.ParseFloat(s, 64)
	return v * mult
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
