package serve_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/watest"
	"github.com/wactl/wactl/pkg/sessions"
	"github.com/wactl/wactl/pkg/store/sqlite"
)

// TestServeTightensLoosePermissions is issue 16 item 10: `serve` started
// silently with sessions 0755, whatsmeow.db 0644 and wactl.db 0644 (a
// restore from a backup, an operator's cp). It now sets dirs 0700 and files
// 0600 before anything else and logs what it changed; the account still
// comes back connected.
func TestServeTightensLoosePermissions(t *testing.T) {
	srv := wafake.Start(t)
	dataDir := t.TempDir()
	sess, err := sessions.Open(filepath.Join(dataDir, "sessions"), sessions.Options{})
	if err != nil {
		t.Fatal(err)
	}
	acct := watest.Pair(t, srv, sess, "40722000009")
	st, err := sqlite.Open(context.Background(), sqlite.Options{Dir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	loose := map[string]fs.FileMode{
		dataDir: 0o755, filepath.Join(dataDir, "sessions"): 0o755, filepath.Join(dataDir, "sessions", acct.ID): 0o755,
		filepath.Join(dataDir, "wactl.db"): 0o644,
	}
	err = filepath.WalkDir(filepath.Join(dataDir, "sessions", acct.ID), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			loose[p] = 0o644
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for p, m := range loose {
		if err := os.Chmod(p, m); err != nil {
			t.Fatal(err)
		}
	}
	p := serve(t, srv, dataDir)
	p.waitConnected(1, 30*time.Second)
	for path := range loose {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		want := fs.FileMode(0o600)
		if fi.IsDir() {
			want = 0o700
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s is %04o after start, want %04o", path, fi.Mode().Perm(), want)
		}
	}
	if log := p.log(); !strings.Contains(log, "tightened permissions") || !strings.Contains(log, "whatsmeow.db") {
		t.Errorf("start-up did not say what it tightened:\n%s", log)
	}
}
