package firestore_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/pkg/fsclient"
	"github.com/wactl/wactl/pkg/store"
	"github.com/wactl/wactl/pkg/store/firestore"
)

const benchN = 10000

// historySet is n history messages of one account over 200 chats, built by
// hand (identifiers as plain strings).
func historySet(acc string, n int) []store.Message {
	out := make([]store.Message, n)
	t0 := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	for i := range out {
		jid := fmt.Sprintf("4072200%04d@s.whatsapp.net", i%200)
		wa := fmt.Sprintf("3EB0H%08d", i)
		out[i] = store.Message{
			AccountID: acc, ThreadID: acc + "__" + jid, DocID: fmt.Sprintf("%024x", i+1),
			ClientJID: jid, ClientJIDRaw: jid, RawJID: jid, ResolvedJID: jid,
			NormalizedPhone: "+" + strings.TrimSuffix(jid, "@s.whatsapp.net"), PeerType: "user",
			SenderJID: jid, SenderName: "Peer", Direction: "inbound",
			Body: fmt.Sprintf("history message number %d with some text", i), WAMessageID: wa, WAMessageIDRaw: wa,
			Status: "delivered", MessageType: "text", TsClient: t0.Add(time.Duration(i) * time.Second),
			Source: "history_sync", StableKeyHash: fmt.Sprintf("%08x", i), FingerprintHash: fmt.Sprintf("%08x", i),
		}
	}
	return out
}

func benchStore(b *testing.B) (*firestore.Store, string) {
	project := fsemu.ProjectID(b)
	s, err := firestore.Open(context.Background(), firestore.Options{
		Connection: fsclient.Options{ProjectID: project, EmulatorHost: fsemu.Host(b)},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s, project
}

// BenchmarkHistorySync records a 10,000-message history sync through the
// store: mappings, message documents and thread summaries, atomically.
func BenchmarkHistorySync(b *testing.B) {
	s, _ := benchStore(b)
	ctx := context.Background()
	run := 0
	for b.Loop() {
		b.StopTimer()
		acc := fmt.Sprintf("account_bench_%08d", run)
		msgs := historySet(acc, benchN)
		run++
		b.StartTimer()
		res, err := s.RecordHistory(ctx, acc, msgs)
		if err != nil || res.Saved != benchN {
			b.Fatalf("%+v, %v", res, err)
		}
	}
	b.ReportMetric(float64(benchN*b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkRawBulkWriter writes the same 10,000 message documents with a
// plain BulkWriter: no identity, no mapping, no thread summary. The
// baseline for BenchmarkHistorySync.
func BenchmarkRawBulkWriter(b *testing.B) {
	s, _ := benchStore(b)
	c := s.Client()
	ctx := context.Background()
	run := 0
	for b.Loop() {
		b.StopTimer()
		acc := fmt.Sprintf("account_raw_%08d", run)
		msgs := historySet(acc, benchN)
		run++
		b.StartTimer()
		bw := c.BulkWriter(ctx)
		var errs []func() error
		for i := range msgs {
			m := &msgs[i]
			j, err := bw.Create(c.Collection("threads").Doc(m.ThreadID).Collection("messages").Doc(m.DocID), firestore.MessageDocument(m))
			if err != nil {
				b.Fatal(err)
			}
			errs = append(errs, func() error { _, err := j.Results(); return err })
		}
		bw.End()
		for _, e := range errs {
			if err := e(); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(benchN*b.N)/b.Elapsed().Seconds(), "msgs/s")
}
