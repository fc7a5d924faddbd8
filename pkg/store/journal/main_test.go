package journal_test

import (
	"os"
	"testing"

	"github.com/wactl/wactl/internal/fsemu"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain())
	}
	os.Exit(fsemu.Main(m))
}
