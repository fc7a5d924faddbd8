package sessions

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/wactl/wactl/internal/pgtest"
)

// pairedSQLite makes a SQLite store with one paired account and one that
// was never paired.
func pairedSQLite(t *testing.T) (*Store, [32]byte) {
	t.Helper()
	s, _ := newStore(t)
	mustCreate(t, s, testID)
	mustCreate(t, s, testID2)
	d, err := s.OpenDevice(contextBackground(), testID, DeviceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pairFake(t, s, d, "40712345678")
	if err := d.Store.Identities.PutIdentity(contextBackground(), "40799999999.0:1", [32]byte{9}); err != nil {
		t.Fatal(err)
	}
	key := *d.Store.IdentityKey.Pub
	d.Close()
	return s, key
}

func migrated(t *testing.T, res []MigratedAccount, err error, want ...string) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(want) {
		t.Fatalf("results %+v, want outcomes %v", res, want)
	}
	for i, r := range res {
		if r.Outcome != want[i] {
			t.Fatalf("account %s: %s (%s), want %s", r.AccountID, r.Outcome, r.Detail, want[i])
		}
	}
}

func TestMigrateSQLiteToPostgresAndBack(t *testing.T) {
	ctx := contextBackground()
	lite, key := pairedSQLite(t)
	pg := newPGStore(t, pgtest.DSN(t), "host-a")

	res, err := Migrate(ctx, lite, pg, MigrateOptions{})
	migrated(t, res, err, MigrateCopied, MigrateCopied)
	if res[0].Rows == 0 || res[0].DeviceJID == "" {
		t.Fatalf("paired account copied without rows: %+v", res[0])
	}
	d, err := pg.OpenDevice(ctx, testID, DeviceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !d.Paired() || *d.Store.IdentityKey.Pub != key || d.Account.Name != "Shop" {
		t.Fatalf("device in PostgreSQL: paired=%v", d.Paired())
	}
	if id, err := d.Store.Identities.IsTrustedIdentity(ctx, "40799999999.0:1", [32]byte{9}); err != nil || !id {
		t.Fatalf("identity row not migrated: %v %v", id, err)
	}
	d.Close()
	// The source stays; a second run finds everything already there.
	if _, err := lite.Get(testID); err != nil {
		t.Fatalf("source gone without --remove-source: %v", err)
	}
	res, err = Migrate(ctx, lite, pg, MigrateOptions{})
	migrated(t, res, err, MigrateIdentical, MigrateIdentical)

	// And back, into a host with an empty sessions directory.
	back, _ := newStore(t)
	res, err = Migrate(ctx, pg, back, MigrateOptions{RemoveSource: true})
	migrated(t, res, err, MigrateCopied, MigrateCopied)
	d, err = back.OpenDevice(ctx, testID, DeviceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !d.Paired() || *d.Store.IdentityKey.Pub != key {
		t.Fatalf("device back in SQLite: paired=%v", d.Paired())
	}
	d.Close()
	if res[0].SourceRemoved == "" {
		t.Fatalf("source not removed: %+v", res[0])
	}
	if _, err := pg.Get(testID); !errors.Is(err, ErrNoAccount) {
		t.Fatalf("PostgreSQL still has the account after --remove-source: %v", err)
	}
	inv, err := pg.Inventory(ctx)
	if err != nil || len(inv.Problems) != 0 || inv.Counts.Removed != 2 {
		t.Fatalf("PostgreSQL after remove-source: %+v %v", inv, err)
	}
}

func TestMigrateRefusesHeldAndDifferentAccounts(t *testing.T) {
	ctx := contextBackground()
	lite, _ := pairedSQLite(t)
	pg := newPGStore(t, pgtest.DSN(t), "host-a")

	// A daemon (here: this process) drives testID: refused, not copied.
	d, err := lite.OpenDevice(ctx, testID, DeviceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := Migrate(ctx, lite, pg, MigrateOptions{RemoveSource: true})
	migrated(t, res, err, MigrateInUse, MigrateCopied)
	d.Close()
	if _, err := pg.Get(testID); !errors.Is(err, ErrNoAccount) {
		t.Fatalf("held account reached PostgreSQL: %v", err)
	}
	if _, err := os.Stat(lite.Dir(testID)); err != nil {
		t.Fatalf("held account's source touched: %v", err)
	}

	// PostgreSQL gets its own, different testID: never overwritten.
	if _, err := pg.Create(NewAccount{ID: testID, Name: "Other"}); err != nil {
		t.Fatal(err)
	}
	res, err = Migrate(ctx, lite, pg, MigrateOptions{Accounts: []string{testID}, RemoveSource: true})
	migrated(t, res, err, MigrateConflict)
	if a, _ := pg.Get(testID); a == nil || a.Name != "Other" {
		t.Fatalf("destination overwritten: %+v", a)
	}
	if !strings.Contains(res[0].Detail, "different account") {
		t.Fatalf("detail: %s", res[0].Detail)
	}
	if _, err := lite.Get(testID); err != nil {
		t.Fatalf("source removed after a conflict: %v", err)
	}
}
