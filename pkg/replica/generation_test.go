package replica_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/watest"
	"github.com/wactl/wactl/pkg/replica"
	"github.com/wactl/wactl/pkg/sessions"
)

// setLocalGeneration writes the file the restore reads (format of
// replica.WriteLocalGeneration, spelled out so the test does not depend on
// the code under test to set its premise).
func setLocalGeneration(t testing.TB, dir string, gen int64) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"generation": gen})
	if err := os.WriteFile(filepath.Join(dir, "replica.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// touch sets every state file of an account to t0, so the file-time rule
// of the old code would judge the local session newer or older at will.
func touch(t testing.TB, dir string, t0 time.Time) {
	t.Helper()
	for _, n := range []string{"whatsmeow.db", "whatsmeow.db-wal", "account.json"} {
		if err := os.Chtimes(filepath.Join(dir, n), t0, t0); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
}

// changeSession alters an account's device state the way traffic would
// (a device row changes), so its snapshot digest differs.
func changeSession(t testing.TB, s *sessions.Store, id, pushName string) {
	t.Helper()
	ctx := context.Background()
	dev, err := s.OpenDevice(ctx, id, sessions.DeviceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	dev.Store.PushName = pushName
	if err := dev.Store.Save(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestRestoreByLocalGeneration (issue 20 gap 1): whether the copy replaces
// the local session is decided by the replica generation the local session
// was last in step with (kept on disk beside account.json), not by file
// times. Local at N, copy at N+1: restored although the local files are
// newer than the copy. Local at N, copy at N-1: kept although the local
// files are older than the copy.
func TestRestoreByLocalGeneration(t *testing.T) {
	ctx := context.Background()
	c, _ := fsemu.NewClient(t)
	srv := wafake.Start(t)
	src := openStore(t)
	acct := watest.Pair(t, srv, src, "40755200011")
	k, _ := writeKey(t, t.TempDir())
	f := &fence{}
	f.epoch.Store(1)
	r := newReplica(c, k, f)

	if _, err := r.Put(ctx, export(t, src, acct.ID)); err != nil { // generation 1
		t.Fatal(err)
	}
	dst := openStore(t)
	if rr := r.RestoreAccount(ctx, dst, acct.ID); rr.Outcome != replica.Restored {
		t.Fatalf("first restore: %+v", rr)
	}
	setLocalGeneration(t, dst.Dir(acct.ID), 1)

	// Another host moved the account on and wrote generation 2.
	changeSession(t, src, acct.ID, "moved on")
	want := export(t, src, acct.ID)
	if res, err := r.Put(ctx, want); err != nil || res.Generation != 2 {
		t.Fatalf("put: %+v %v", res, err)
	}
	touch(t, dst.Dir(acct.ID), time.Now().Add(time.Hour)) // local files look newer
	rr := r.RestoreAccount(ctx, dst, acct.ID)
	if rr.Outcome != replica.Replaced || rr.Generation != 2 {
		t.Fatalf("local at 1, copy at 2: %+v, want replaced", rr)
	}
	if got := export(t, dst, acct.ID); got.Digest != want.Digest {
		t.Fatal("the local session is not the copy's generation 2")
	}
	if g, _ := replica.LocalGeneration(dst.Dir(acct.ID)); g != 2 {
		t.Fatalf("local generation %d after restoring generation 2", g)
	}
	// The sessions inventory knows the file (no "unknown file" problem).
	inv, err := dst.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range inv.Problems {
		if p.Kind == sessions.ProblemStrayFile {
			t.Fatalf("inventory: %+v", p)
		}
	}

	// The local session is at generation 3 (it wrote 3, then the copy was
	// rolled back to 2 by hand): the copy is older and is not restored
	// although the local files are older than its snapshot time.
	changeSession(t, dst, acct.ID, "local at 3")
	local := export(t, dst, acct.ID)
	setLocalGeneration(t, dst.Dir(acct.ID), 3)
	touch(t, dst.Dir(acct.ID), time.Now().Add(-time.Hour))
	rr = r.RestoreAccount(ctx, dst, acct.ID)
	if rr.Outcome != replica.KeptLocal {
		t.Fatalf("local at 3, copy at 2: %+v, want kept-local", rr)
	}
	if got := export(t, dst, acct.ID); got.Digest != local.Digest {
		t.Fatal("an older copy replaced the local session")
	}
}

// TestResetHereNotUndoneByCopy (issue 20 gap 2, the API's reset): an
// account reset or logged out here after it was in step with its copy
// keeps its unpaired state: the copy (which the daemon could not delete
// before it stopped) is not restored over it. Without the generation on
// disk it is restored, as before.
func TestResetHereNotUndoneByCopy(t *testing.T) {
	ctx := context.Background()
	c, _ := fsemu.NewClient(t)
	srv := wafake.Start(t)
	local := openStore(t)
	acct := watest.Pair(t, srv, local, "40755200015")
	k, _ := writeKey(t, t.TempDir())
	f := &fence{}
	f.epoch.Store(2)
	r := newReplica(c, k, f)
	before := export(t, local, acct.ID)
	res, err := r.Put(ctx, before)
	if err != nil {
		t.Fatal(err)
	}
	setLocalGeneration(t, local.Dir(acct.ID), res.Generation)
	// The reset: whatsmeow's device row goes, account.json is unpaired.
	dev, err := local.OpenDevice(ctx, acct.ID, sessions.DeviceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := dev.Store.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	dev.Close()
	if _, err := local.MarkUnpaired(acct.ID); err != nil {
		t.Fatal(err)
	}
	rr := r.RestoreAccount(ctx, local, acct.ID)
	if rr.Outcome != replica.UnpairedHere {
		t.Fatalf("reset here at generation %d, copy at %d: %+v", res.Generation, res.Generation, rr)
	}
	if m, err := local.Get(acct.ID); err != nil || m.PairedJID != "" {
		t.Fatalf("the reset account was paired again from its copy: %+v %v", m, err)
	}
	// Another host paired it again and wrote a later generation: restored.
	if _, err := r.Put(ctx, before); err != nil {
		t.Fatal(err)
	}
	if rr := r.RestoreAccount(ctx, local, acct.ID); rr.Outcome != replica.Replaced {
		t.Fatalf("copy newer than the reset: %+v", rr)
	}
}
