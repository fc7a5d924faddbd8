package audit_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/api/iterator"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/pkg/audit"
	"github.com/wactl/wactl/pkg/audit/audittest"
)

// BenchmarkFirestoreAudit50k audits 50,000 documents in the emulator next
// to a plain query reading the same documents (the baseline). heapPeak-MB
// is sampled during the run: it stays bounded because the audit keeps 40
// bytes and one reference per document, never the documents.
func BenchmarkFirestoreAudit50k(b *testing.B) {
	ctx := context.Background()
	c, _ := fsemu.NewClient(b)
	const n = 50_000
	bw := c.BulkWriter(ctx)
	for i := 0; i < n; i++ {
		th := fmt.Sprintf("%s__4070%07d@s.whatsapp.net", audittest.Account, i%500)
		ts := now.Add(-time.Duration(i) * time.Second)
		if _, err := bw.Set(c.Collection("threads").Doc(th).Collection("messages").Doc(fmt.Sprintf("%024x", i)), map[string]any{
			"accountId": audittest.Account, "direction": "inbound", "body": fmt.Sprintf("message body %d", i), "messageType": "text",
			"tsClient": ts, "tsClientMs": ts.UnixMilli(), "ingestedAt": ts, "tsServer": ts, "createdAt": ts,
			"stableKeyHash": fmt.Sprintf("%08x", i%45_000),
		}); err != nil {
			b.Fatal(err)
		}
	}
	bw.End()
	sel := audit.Selection{Window: 48 * time.Hour, Limit: n, Key: audit.KeyAuto, Now: now}

	b.Run("plain-query", func(b *testing.B) {
		peak := heapPeak()
		for i := 0; i < b.N; i++ {
			it := c.CollectionGroup("messages").Where("tsClient", ">=", now.Add(-48*time.Hour)).
				OrderBy("tsClient", firestore.Desc).Limit(n).Documents(ctx)
			got := 0
			for {
				_, err := it.Next()
				if errors.Is(err, iterator.Done) {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
				got++
			}
			if got != n {
				b.Fatalf("%d documents", got)
			}
		}
		b.ReportMetric(peak(), "heapPeak-MB")
	})
	b.Run("audit", func(b *testing.B) {
		peak := heapPeak()
		for i := 0; i < b.N; i++ {
			r, err := audit.Run(ctx, audit.NewFirestore(c), audit.Options{Selection: sel})
			if err != nil {
				b.Fatal(err)
			}
			if r.TotalDocs != n || r.DuplicatesCount != 5_000 {
				b.Fatalf("totalDocs=%d duplicatesCount=%d", r.TotalDocs, r.DuplicatesCount)
			}
		}
		b.ReportMetric(peak(), "heapPeak-MB")
	})
}

// heapPeak samples the live heap every 10 ms until the returned function
// is called, and returns the highest value in MB.
func heapPeak() func() float64 {
	runtime.GC()
	stop := make(chan struct{})
	done := make(chan float64)
	go func() {
		var peak uint64
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
			select {
			case <-stop:
				done <- float64(peak) / (1 << 20)
				return
			case <-t.C:
			}
		}
	}()
	return func() float64 { close(stop); return <-done }
}
