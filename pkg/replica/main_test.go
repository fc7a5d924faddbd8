package replica_test

import (
	"os"
	"testing"

	"github.com/wactl/wactl/internal/fsemu"
)

func TestMain(m *testing.M) { os.Exit(fsemu.Main(m)) }
