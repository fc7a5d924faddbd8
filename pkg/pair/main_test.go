package pair

import (
	"log/slog"
	"os"
	"testing"

	"github.com/wactl/wactl/pkg/wmlog"
)

func TestMain(m *testing.M) {
	// As wactl's main does: libsignal's lazily created default logger is
	// both a stdout writer and a data race between concurrent clients.
	wmlog.ReplaceLibsignal(slog.New(slog.DiscardHandler))
	os.Exit(m.Run())
}
