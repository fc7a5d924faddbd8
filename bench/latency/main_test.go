// Package latency measures what the app's users feel (issue 21): a message's
// time from the fake WhatsApp server to its document being readable, and
// from the API's send-message to WhatsApp and to the document at "sent", at
// fixed rates over 20 accounts, each against the bare baseline the issue
// names, measured in the same run. Benchmarks only (nothing here runs under
// `go test` without -bench); bench/latency.sh runs them, figures are in
// docs/performance.md.
package latency

import (
	"os"
	"testing"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/internal/watest/child"
)

// TestMain turns the test binary into `wactl` for the child daemon
// (WACTL_TEST_MAIN=1) and otherwise runs the benchmarks with an emulator.
func TestMain(m *testing.M) {
	child.Run()
	os.Exit(fsemu.Main(m))
}
