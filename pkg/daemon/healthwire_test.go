package daemon

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkHealthWire measures /health on the wire, with wrk (-t2 -c50),
// layer by layer, all in this process and in rounds so that each layer is
// compared within its round (issue 21):
//
//	bare     a bare net/http server and handler, as bench/barehttp
//	handler  the daemon's handler (request id, metrics, mux, snapshot of
//	         200 accounts) on a bare http.Server
//	server   the same on the daemon's http.Server (timeouts, deadlines)
//	full     the same behind the connection limit (limitListener): what
//	         `wactl serve` runs
//
// Besides req/s it reports the process's CPU time per request (user +
// system, from getrusage), which the load of a shared machine moves much
// less than throughput. WACTL_BENCH_WIRE_SECS (3) and
// WACTL_BENCH_WIRE_ROUNDS (3); WACTL_BENCH_WIRE_PROF writes a CPU profile.
// Skipped without wrk. Run with -benchtime 1x.
func BenchmarkHealthWire(b *testing.B) {
	if _, err := exec.LookPath("wrk"); err != nil {
		b.Skip("wrk not installed (apt-get install wrk)")
	}
	secs := envPositive("WACTL_BENCH_WIRE_SECS", 3)
	rounds := envPositive("WACTL_BENCH_WIRE_ROUNDS", 3)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	status := func() Status { return manyAccounts(200) }
	small := []byte(`{"ok":true,"status":"ok"}` + "\n")
	bareMux := http.NewServeMux()
	bareMux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(small)
	})
	daemonHandler := func() http.Handler {
		return NewHandler(HandlerOptions{Status: status, StatusMaxAge: StatusMaxAge})
	}
	type layer struct {
		name string
		url  string
	}
	var layers []layer
	serve := func(name string, srv *http.Server, limit bool) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		url := "http://" + ln.Addr().String() + "/health"
		if limit {
			ln = newLimitListener(ln, connBudget(0), log)
		}
		go srv.Serve(ln)
		b.Cleanup(func() { srv.Close() })
		layers = append(layers, layer{name, url})
	}
	serve("bare", &http.Server{Handler: bareMux}, false)
	serve("handler", &http.Server{Handler: daemonHandler()}, false)
	serve("server", newHTTPServer(daemonHandler(), log), false)
	serve("full", newHTTPServer(daemonHandler(), log), true)

	if p := os.Getenv("WACTL_BENCH_WIRE_PROF"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	rps := map[string][]float64{}
	cpu := map[string][]float64{}
	for round := range rounds {
		line := fmt.Sprintf("round %d:", round+1)
		for _, l := range layers {
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			c0 := selfCPU()
			r, n := wrkHealth(b, l.url, secs)
			us := float64(selfCPU()-c0) / float64(time.Microsecond) / float64(max(n, 1))
			runtime.ReadMemStats(&m1)
			rps[l.name], cpu[l.name] = append(rps[l.name], r), append(cpu[l.name], us)
			line += fmt.Sprintf(" %s %.0f req/s %.2f µs CPU/req %.0f B %.1f allocs/req %d GCs |", l.name, r, us,
				float64(m1.TotalAlloc-m0.TotalAlloc)/float64(max(n, 1)), float64(m1.Mallocs-m0.Mallocs)/float64(max(n, 1)), m1.NumGC-m0.NumGC)
		}
		b.Logf("%s load %s", line, loadavg())
	}
	var sum []string
	for _, l := range layers[1:] {
		var rr, cr []float64
		for i := range rounds {
			rr = append(rr, rps[l.name][i]/rps["bare"][i])
			cr = append(cr, cpu[l.name][i]/cpu["bare"][i])
		}
		sum = append(sum, fmt.Sprintf("%s %.2f× bare req/s (rounds %s), %.2f× bare CPU/req", l.name, medianOf(rr), fmtRatios(rr), medianOf(cr)))
		b.ReportMetric(medianOf(rr), l.name+"/bare-req/s")
		b.ReportMetric(medianOf(cpu[l.name]), l.name+"-µs-CPU/req")
	}
	b.ReportMetric(medianOf(cpu["bare"]), "bare-µs-CPU/req")
	b.Logf("medians over %d rounds of %ds: bare %.2f µs CPU/req; %s; load %s", rounds, secs, medianOf(cpu["bare"]), strings.Join(sum, "; "), loadavg())
}

func envPositive(k string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(k)); err == nil && v > 0 {
		return v
	}
	return def
}

// selfCPU is this process's user + system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// wrkHealth runs wrk against url and returns req/s and the requests done.
func wrkHealth(b *testing.B, url string, secs int) (float64, int) {
	out, err := exec.Command("wrk", "-t2", "-c50", fmt.Sprintf("-d%ds", secs), url).CombinedOutput()
	if err != nil {
		b.Fatalf("wrk %s: %v\n%s", url, err, out)
	}
	var rps float64
	var n int
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && f[0] == "Requests/sec:" {
			rps, _ = strconv.ParseFloat(f[1], 64)
		}
		if len(f) >= 4 && f[1] == "requests" && f[2] == "in" {
			n, _ = strconv.Atoi(f[0])
		}
		if strings.Contains(l, "Non-2xx") || strings.Contains(l, "Socket errors") {
			b.Fatalf("wrk %s: %s", url, l)
		}
	}
	return rps, n
}

func medianOf(v []float64) float64 {
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

func fmtRatios(v []float64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.FormatFloat(x, 'f', 2, 64)
	}
	return strings.Join(s, " ")
}

func loadavg() string {
	raw, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(raw))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
