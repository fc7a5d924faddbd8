package wafake

import (
	"context"
	"path/filepath"
	"testing"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/store/sqlstore"
)

// Start starts a fake server for one test and closes it at cleanup.
func Start(t testing.TB, opts ...Options) *Server {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestStore opens a fresh SQLite whatsmeow store in t.TempDir() and returns
// the container, its path and a new unpaired device in it.
func TestStore(t testing.TB) (*sqlstore.Container, string, *store.Device) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "whatsmeow.db")
	c, err := OpenStore(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, path, c.NewDevice()
}

// NewTestClient is NewClient for a fresh unpaired device in a new store; the
// client is disconnected at cleanup.
func (s *Server) NewTestClient(t testing.TB) (*whatsmeow.Client, *sqlstore.Container) {
	t.Helper()
	c, _, dev := TestStore(t)
	cli := s.NewClient(dev, nil)
	t.Cleanup(cli.Disconnect)
	return cli, c
}
