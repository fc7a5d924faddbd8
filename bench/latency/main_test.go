// Package latency measures what the app's users feel (issue 21): a message's
// time from the fake WhatsApp server to its document being readable, and
// from the API's send-message to WhatsApp and to the document at "sent", at
// fixed rates over 20 accounts, each against the bare baseline the issue
// names, measured in the same run. Benchmarks only (nothing here runs under
// `go test` without -bench); bench/latency.sh runs them, figures are in
// docs/performance.md.
package latency

import (
	"net/http"
	"net/http/pprof"
	"os"
	"strings"
	"testing"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/internal/watest/child"
)

// TestMain turns the test binary into `wactl` for the child daemon
// (WACTL_TEST_MAIN=1) and otherwise runs the benchmarks with an emulator.
// With WACTL_BENCH_PPROF=host:port the child also serves net/http/pprof
// there (its own listener and mux, not the daemon's), so a run can take
// goroutine dumps of the daemon while it is behind (WACTL_BENCH_PROFILE_DIR).
func TestMain(m *testing.M) {
	if addr := os.Getenv("WACTL_BENCH_PPROF"); addr != "" && os.Getenv("WACTL_TEST_MAIN") == "1" {
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		go http.ListenAndServe(addr, mux)
	}
	if dir := os.Getenv(bareSenderEnv); dir != "" {
		var ids []string
		for _, a := range os.Args[1:] {
			if !strings.HasPrefix(a, "-") {
				ids = append(ids, a)
			}
		}
		os.Exit(runBareSender(dir, ids, barePeers))
	}
	child.Run()
	os.Exit(fsemu.Main(m))
}
