package sessions_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	sessionscmd "github.com/wactl/wactl/internal/cmd/sessions"
	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/watest"
	"github.com/wactl/wactl/pkg/sessions"
)

// TestBackupAndRestoreChosenAccounts (issue 19 part 2, "--account ID"):
// `backup --account` writes only that account; `restore --account` puts
// only the named accounts of a full backup into an empty data dir, and an
// account the backup lacks is refused (exit 1) before anything is written.
func TestBackupAndRestoreChosenAccounts(t *testing.T) {
	srv := wafake.Start(t)
	data := t.TempDir()
	sess, err := sessions.Open(filepath.Join(data, "sessions"), sessions.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a1, a2 := watest.Pair(t, srv, sess, "40766200001"), watest.Pair(t, srv, sess, "40766200002")
	identity, recipients := keyFiles(t)
	dir := t.TempDir()
	one, all := filepath.Join(dir, "one.age"), filepath.Join(dir, "all.age")

	r := wactl(t, srv, data, "sessions", "backup", "--out", one, "-R", recipients, "--account", a2.ID, "--json")
	var brep sessionscmd.BackupReport
	if err := json.Unmarshal([]byte(r.stdout), &brep); err != nil || r.code != 0 {
		t.Fatalf("backup --account: exit %d %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	if len(brep.Accounts) != 1 || brep.Accounts[0].ID != a2.ID || !brep.Accounts[0].Paired {
		t.Fatalf("backup --account %s: %+v", a2.ID, brep.Accounts)
	}
	if r := wactl(t, srv, data, "sessions", "backup", "--out", all, "-R", recipients); r.code != 0 {
		t.Fatalf("backup: exit %d %s", r.code, r.stderr)
	}

	// accounts lists the account directories of a data dir.
	accounts := func(dataDir string) []string {
		entries, _ := os.ReadDir(filepath.Join(dataDir, "sessions"))
		var ids []string
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), "account_") {
				ids = append(ids, e.Name())
			}
		}
		return ids
	}
	empty := func() string {
		d := filepath.Join(t.TempDir(), "empty")
		os.Mkdir(d, 0o700)
		return d
	}

	d1 := empty()
	if r := wactl(t, srv, d1, "sessions", "restore", one, "-i", identity); r.code != 0 {
		t.Fatalf("restore of the one-account file: exit %d %s", r.code, r.stderr)
	}
	if got := accounts(d1); len(got) != 1 || got[0] != a2.ID {
		t.Fatalf("after restoring the one-account file: %v, want only %s", got, a2.ID)
	}

	d2 := empty()
	r = wactl(t, srv, d2, "sessions", "restore", all, "-i", identity, "--account", a1.ID, "--json")
	var rrep sessionscmd.RestoreReport
	if err := json.Unmarshal([]byte(r.stdout), &rrep); err != nil || r.code != 0 {
		t.Fatalf("restore --account: exit %d %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	if len(rrep.Accounts) != 1 || rrep.Accounts[0].AccountID != a1.ID || rrep.Accounts[0].Outcome != sessions.OutcomeRestored {
		t.Fatalf("restore --account %s: %+v", a1.ID, rrep.Accounts)
	}
	if got := accounts(d2); len(got) != 1 || got[0] != a1.ID {
		t.Fatalf("after restore --account %s: %v", a1.ID, got)
	}

	d3 := empty()
	r = wactl(t, srv, d3, "sessions", "restore", all, "-i", identity, "--account", a1.ID, "--account", "account_prod_ffffffffffffffffffffffffffffffff")
	if r.code != 1 || !strings.Contains(r.stderr, "not in this backup") {
		t.Fatalf("restore of an account the backup lacks: exit %d, stderr %q", r.code, r.stderr)
	}
	if got := accounts(d3); len(got) != 0 {
		t.Fatalf("a refused restore wrote %v", got)
	}
}
