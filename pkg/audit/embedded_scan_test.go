package audit

import (
	"context"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/wactl/wactl/pkg/audit/audittest"
)

// The key chosen in SQL must group exactly as the previous scan, which
// handed every column to KeyStrategy.Key: same groups, same key kinds, for
// every strategy and selection, old shapes (stubs, missing hashes) included.
func TestEmbeddedScanGroupsAsBaseline(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Date(2026, 1, 21, 12, 0, 0, 0, time.UTC)
	path := filepath.Join(t.TempDir(), "wactl.db")
	if err := audittest.WriteSQLite(ctx, path, append(audittest.Seed(now), audittest.Legacy(now)...)); err != nil {
		t.Fatal(err)
	}
	e, err := OpenEmbedded(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if _, err := e.db.ExecContext(ctx, `UPDATE messages SET is_duplicate = 1 WHERE seq % 7 = 0`); err != nil {
		t.Fatal(err)
	}
	// Stores before the ts_client_ms index: drop it if this one has it.
	if e.tsIndex != "" {
		if _, err := e.db.ExecContext(ctx, `DROP INDEX "`+e.tsIndex+`"`); err != nil {
			t.Fatal(err)
		}
		e.Close()
		if e, err = OpenEmbedded(ctx, path); err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		if e.tsIndex != "" {
			t.Fatalf("index %s still found after dropping it", e.tsIndex)
		}
	}
	kinds := map[string]bool{}
	compareWithBaseline(t, e, now, kinds)
	for _, k := range []string{KindStable, KindFingerprint, KindProvider, KindLegacy, KindStub, KindNone} {
		if !kinds[k] {
			t.Errorf("no document keyed by %s: the data no longer covers it", k)
		}
	}

	// With an index on the time (as later store versions have), small
	// selections are read through it: same groups.
	if _, err := e.db.ExecContext(ctx, `CREATE INDEX "test ts" ON messages (ts_client_ms DESC)`); err != nil {
		t.Fatal(err)
	}
	ix, err := OpenEmbedded(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	if ix.tsIndex != "test ts" {
		t.Fatalf("index on ts_client_ms not found (%q)", ix.tsIndex)
	}
	if from, err := ix.scanAccess(ctx, Selection{}, 10); err != nil || from != ` INDEXED BY "test ts"` {
		t.Fatalf("10 rows of %d: %q %v", 600, from, err)
	}
	if from, _ := ix.scanAccess(ctx, Selection{}, 500); from != " NOT INDEXED" {
		t.Fatalf("most of the table: %q", from)
	}
	compareWithBaseline(t, ix, now, map[string]bool{})
}

func compareWithBaseline(t *testing.T, e *Embedded, now time.Time, kinds map[string]bool) {
	t.Helper()
	ctx := context.Background()
	sels := []Selection{
		{Window: 48 * time.Hour, Limit: 500, Now: now},
		{Window: 48 * time.Hour, Limit: 37, Now: now},
		{Limit: 20, Now: now},
		{Now: now},
		{Window: 48 * time.Hour, ThreadID: audittest.ThreadB, Now: now},
		{Window: 48 * time.Hour, AccountID: audittest.Account, Limit: 200, Now: now},
	}
	for _, key := range []KeyStrategy{KeyAuto, KeyStable, KeyFingerprint, KeyLegacy} {
		for _, sel := range sels {
			sel.Key = key
			for _, excl := range []bool{false, true} {
				got, err := Collect(ctx, e, sel, excl)
				if err != nil {
					t.Fatal(err)
				}
				want, err := Collect(ctx, &BaselineEmbedded{e}, sel, excl)
				if err != nil {
					t.Fatal(err)
				}
				if len(want.entries) == 0 {
					t.Fatalf("%s %+v: empty selection tests nothing", key, sel)
				}
				if !reflect.DeepEqual(got.entries, want.entries) || !reflect.DeepEqual(got.KindCounts, want.KindCounts) ||
					got.Marked != want.Marked || got.Selected != want.Selected || !reflect.DeepEqual(got.Stats, want.Stats) {
					t.Fatalf("%s %+v exclude=%v: kinds %v vs baseline %v, %d/%d entries", key, sel, excl,
						got.KindCounts, want.KindCounts, len(got.entries), len(want.entries))
				}
				for k := range got.KindCounts {
					kinds[k] = true
				}
			}
		}
	}
}
