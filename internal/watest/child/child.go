// Package child turns a test binary into `wactl` for tests that need the
// real command tree in a real child process: the test re-executes
// os.Args[0] with WACTL_TEST_MAIN=1, and Run (called first thing in
// TestMain) runs wactl instead of the tests. The one test hook it adds
// points whatsmeow at the fake WhatsApp server named in the environment
// (wafake.Server.Env); the shipped binary has no such hook.
package child

import (
	"os"

	"go.mau.fi/whatsmeow"

	"github.com/wactl/wactl/internal/cmd"
	"github.com/wactl/wactl/internal/cmdutil"
	"github.com/wactl/wactl/internal/wafake"
)

// Env is the variable that makes the test binary run as wactl.
const Env = "WACTL_TEST_MAIN=1"

// Run exits with wactl's exit code when this process is such a child, and
// returns otherwise.
func Run() {
	if os.Getenv("WACTL_TEST_MAIN") != "1" {
		return
	}
	os.Exit(cmd.MainWith(func(f *cmdutil.Factory) {
		f.ConfigureWAClient = func(c *whatsmeow.Client) {
			if _, err := wafake.ConfigureClientFromEnv(c); err != nil {
				panic(err)
			}
		}
	}))
}
