package cleanup

import (
	"os"
	"testing"

	"github.com/wactl/wactl/internal/fsemu"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	os.Exit(fsemu.Main(m))
}
