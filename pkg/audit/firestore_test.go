package audit_test

import (
	"context"
	"testing"
	"time"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/pkg/audit"
	"github.com/wactl/wactl/pkg/audit/audittest"
)

var now = time.Date(2026, 1, 21, 12, 0, 0, 0, time.UTC)

func seedSel(key audit.KeyStrategy) audit.Selection {
	return audit.Selection{Window: 48 * time.Hour, Limit: 500, Key: key, Now: now}
}

func TestFirestoreSeedAudit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, _ := fsemu.NewClient(t)
	if err := audittest.WriteFirestore(ctx, c, audittest.Seed(now)); err != nil {
		t.Fatal(err)
	}
	for _, key := range []audit.KeyStrategy{audit.KeyAuto, audit.KeyLegacy, audit.KeyStable, audit.KeyFingerprint} {
		r, err := audit.Run(ctx, audit.NewFirestore(c), audit.Options{Selection: seedSel(key)})
		if err != nil {
			t.Fatal(err)
		}
		if r.TotalDocs != 500 || r.UniqueFingerprints != 388 || r.DuplicatesCount != 112 {
			t.Errorf("key %s: totalDocs=%d uniqueFingerprints=%d duplicatesCount=%d, want 500/388/112",
				key, r.TotalDocs, r.UniqueFingerprints, r.DuplicatesCount)
		}
		if r.MarkedDocs != 0 || r.ActiveDocs != 500 || r.ParseFailures != 0 {
			t.Errorf("key %s: marked=%d active=%d parseFailures=%d", key, r.MarkedDocs, r.ActiveDocs, r.ParseFailures)
		}
		if len(r.Groups) != 10 || r.Groups[0].Size != 3 || len(r.Groups[0].SampleDocIDs) != 3 {
			t.Errorf("key %s: top groups %+v", key, r.Groups)
		}
	}
	// One account, one thread: the same selection through other queries.
	sel := seedSel(audit.KeyAuto)
	sel.AccountID = audittest.Account
	r, err := audit.Run(ctx, audit.NewFirestore(c), audit.Options{Selection: sel})
	if err != nil || r.TotalDocs != 500 || r.DuplicatesCount != 112 {
		t.Fatalf("account: %+v %v", r, err)
	}
	sel = seedSel(audit.KeyAuto)
	sel.ThreadID = audittest.ThreadB
	r, err = audit.Run(ctx, audit.NewFirestore(c), audit.Options{Selection: sel})
	if err != nil {
		t.Fatal(err)
	}
	// Thread B holds messages i%3==0 of 388 (130) and their copies.
	if r.UniqueFingerprints != 130 || r.TotalDocs != 130+r.DuplicatesCount || r.DuplicatesCount == 0 {
		t.Fatalf("thread: %+v", r)
	}
	// A smaller limit takes the newest documents only.
	sel = seedSel(audit.KeyAuto)
	sel.Limit = 10
	r, err = audit.Run(ctx, audit.NewFirestore(c), audit.Options{Selection: sel})
	if err != nil || r.TotalDocs != 10 {
		t.Fatalf("limit 10: %+v %v", r, err)
	}
}

func TestFirestoreLegacyShapes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, _ := fsemu.NewClient(t)
	if err := audittest.WriteFirestore(ctx, c, audittest.Legacy(now)); err != nil {
		t.Fatal(err)
	}
	r, err := audit.Run(ctx, audit.NewFirestore(c), audit.Options{Selection: seedSel(audit.KeyAuto)})
	if err != nil {
		t.Fatal(err)
	}
	if r.TotalDocs != 6 || r.UniqueFingerprints != 4 || r.DuplicatesCount != 2 || r.ParseFailures != 1 {
		t.Fatalf("auto: %+v", r)
	}
	want := map[string]int{audit.KindProvider: 2, audit.KindLegacy: 2, audit.KindStub: 2}
	for k, n := range want {
		if r.KeyStrategyCounts[k] != n {
			t.Errorf("keyStrategyCounts[%s]=%d want %d (%v)", k, r.KeyStrategyCounts[k], n, r.KeyStrategyCounts)
		}
	}
	shapes := map[string]int{"timestamp": 4, "string": 1, "missing": 1}
	for k, n := range shapes {
		if r.TsClientShapes[k] != n {
			t.Errorf("tsClientShapes[%s]=%d want %d (%v)", k, r.TsClientShapes[k], n, r.TsClientShapes)
		}
	}
	groups := map[string]bool{}
	for _, g := range r.Groups {
		for _, id := range g.SampleDocIDs {
			groups[id] = true
		}
	}
	for _, id := range []string{"legacy-string-ts", "legacy-timestamp", "legacy-no-ts", "legacy-no-hash"} {
		if !groups[id] {
			t.Errorf("%s not in a duplicate group: %+v", id, r.Groups)
		}
	}
	// The first script's key merges the two stubs: the reason auto does not.
	r, err = audit.Run(ctx, audit.NewFirestore(c), audit.Options{Selection: seedSel(audit.KeyLegacy)})
	if err != nil {
		t.Fatal(err)
	}
	if r.DuplicatesCount != 3 || r.KeyStrategyCounts[audit.KindLegacy] != 6 {
		t.Fatalf("legacy: %+v", r)
	}
}
