package replica_test

import (
	"context"
	"testing"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/watest"
)

// BenchmarkReplica measures one copy of a paired account (docs/performance.md):
// Export (read the SQLite session in one transaction), Encrypt (gzip JSON +
// age), and Put (encrypt + chunk write + conditional pointer write + delete of
// the previous generation, against the emulator on loopback), with the
// ciphertext size per copy. Export is the baseline the daemon pays anyway
// to detect a change.
func BenchmarkReplica(b *testing.B) {
	ctx := context.Background()
	c, _ := fsemu.NewClient(b)
	srv := wafake.Start(b)
	src := openStore(b)
	acct := watest.Pair(b, srv, src, "40755300001")
	k, _ := writeKey(b, b.TempDir())
	f := &fence{}
	f.epoch.Store(1)
	r := newReplica(c, k, f)
	snap := export(b, src, acct.ID)

	b.Run("Export", func(b *testing.B) {
		for b.Loop() {
			if _, err := src.ExportAccount(ctx, acct.ID); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Encrypt", func(b *testing.B) {
		var n int
		for b.Loop() {
			ct, err := r.Encrypt(snap)
			if err != nil {
				b.Fatal(err)
			}
			n = len(ct)
		}
		b.ReportMetric(float64(n), "bytes/copy")
	})
	b.Run("Put", func(b *testing.B) {
		var bytes int64
		for b.Loop() {
			res, err := r.Put(ctx, snap)
			if err != nil {
				b.Fatal(err)
			}
			bytes = res.Bytes
		}
		b.ReportMetric(float64(bytes), "bytes/copy")
	})
	b.Run("Get", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := r.Get(ctx, acct.ID); err != nil {
				b.Fatal(err)
			}
		}
	})
}
