package daemon

import (
	"bytes"
	"compress/zlib"
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/proto/waWeb"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"

	"github.com/wactl/wactl/pkg/dedupe"
	"github.com/wactl/wactl/pkg/histq"
	"github.com/wactl/wactl/pkg/store"
	"github.com/wactl/wactl/pkg/store/msgbuild"
	"github.com/wactl/wactl/pkg/store/sqlite"
)

// BenchmarkHistorySync measures a 20,000-message history sync (200 chats of
// 100, one inline notification) into the embedded store, both ways in one
// run:
//
//   - direct: the history path of ca70e15 (decode, convert, RecordHistory
//     in batches of 400; nothing durable before the store has it);
//   - durable: the notification committed to the history queue first,
//     then decoded and recorded from the queue with the cursor saved after
//     every batch and the entry deleted at the end.
//
// Figures: docs/performance.md ("Durable history sync"). Run with
//
//	go test -run '^$' -bench BenchmarkHistorySync -benchtime 5x ./pkg/daemon/
func BenchmarkHistorySync(b *testing.B) {
	const n = 20000
	notif := inlineNotification(b, n)
	// Both paths run in every iteration, in alternating order, so machine
	// load hits them alike; the ratio is the figure that matters.
	var took [2]time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k := 0; k < 2; k++ {
			mode := (i + k) % 2 // 0 direct, 1 durable
			b.StopTimer()
			r := newBenchRig(b)
			b.StartTimer()
			start := time.Now()
			var got int
			if mode == 0 {
				blob, err := r.cli.DownloadHistorySync(context.Background(), notif, true)
				if err != nil {
					b.Fatal(err)
				}
				got = r.a.legacyRecordHistory(blob)
			} else {
				got = r.durable(b, notif)
			}
			took[mode] += time.Since(start)
			b.StopTimer()
			if c := r.count(b); got != n || c != n {
				b.Fatalf("mode %d: recorded %d, store has %d, want %d", mode, got, c, n)
			}
			r.close()
			b.StartTimer()
		}
	}
	direct := float64(n*b.N) / took[0].Seconds()
	durable := float64(n*b.N) / took[1].Seconds()
	b.ReportMetric(direct, "direct_msg/s")
	b.ReportMetric(durable, "durable_msg/s")
	b.ReportMetric(direct/durable, "slowdown_x")
}

type benchRig struct {
	m   *Manager
	a   *account
	cli *whatsmeow.Client
	st  *sqlite.Store
	q   *histq.Queue
	dir string
}

func newBenchRig(b *testing.B) *benchRig {
	dir := b.TempDir()
	st, err := sqlite.Open(context.Background(), sqlite.Options{Dir: dir})
	if err != nil {
		b.Fatal(err)
	}
	container, err := sqlstore.New(context.Background(), "sqlite",
		"file:"+filepath.Join(dir, "wm.db")+"?_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)", nil)
	if err != nil {
		b.Fatal(err)
	}
	dev := container.NewDevice()
	dev.ID = &types.JID{User: "40700000001", Device: 1, Server: types.DefaultUserServer}
	cli := whatsmeow.NewClient(dev, nil)
	m := NewManager(ManagerOptions{Store: st})
	m.active = true
	a := &account{m: m, id: dedupe.AccountIDFromCanonical("bench", "+40700000001"), cli: cli}
	m.accounts[a.id] = a
	q, err := histq.Open(filepath.Join(dir, histq.FileName), histq.Options{})
	if err != nil {
		b.Fatal(err)
	}
	h := m.histWorker()
	h.q, h.policy = q, HistoryPolicy{}.withDefaults()
	return &benchRig{m: m, a: a, cli: cli, st: st, q: q, dir: dir}
}

func (r *benchRig) close() {
	r.q.Close()
	r.st.Close()
	workers.Delete(r.m)
}

func (r *benchRig) count(b *testing.B) int {
	threads, err := r.st.ListThreads(context.Background(), r.a.id, store.Page{Limit: 500})
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for _, th := range threads {
		msgs, err := r.st.ListMessages(context.Background(), th.ID, store.Page{Limit: 500})
		if err != nil {
			b.Fatal(err)
		}
		n += len(msgs)
	}
	return n
}

// durable is the queue path: what the handler does (Put) and what the
// worker does for the entry (download/decode, record with cursor, Done).
func (r *benchRig) durable(b *testing.B, notif *waE2E.HistorySyncNotification) int {
	ctx := context.Background()
	raw, err := proto.Marshal(notif)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := r.q.Put(ctx, r.a.id, "HSN1", raw); err != nil {
		b.Fatal(err)
	}
	due, err := r.q.Due(ctx, time.Now(), 1)
	if err != nil || len(due) != 1 {
		b.Fatalf("due %v %v", due, err)
	}
	var n waE2E.HistorySyncNotification
	if err := proto.Unmarshal(due[0].Notification, &n); err != nil {
		b.Fatal(err)
	}
	blob, err := r.cli.DownloadHistorySync(ctx, &n, true)
	if err != nil {
		b.Fatal(err)
	}
	done, err := r.m.histWorker().record(ctx, r.q, r.a, r.cli, due[0], blob)
	if err != nil || !done {
		b.Fatalf("record: %v %v", done, err)
	}
	if s, _ := r.q.Stats(ctx); s.Pending != 0 {
		b.Fatalf("%d entries left", s.Pending)
	}
	return r.m.boot.HistoryLastBatch
}

// legacyRecordHistory is ca70e15's account.recordHistory (the baseline),
// returning how many messages it wrote.
func (a *account) legacyRecordHistory(data *waHistorySync.HistorySync) int {
	cli := a.cli
	ctx := context.Background()
	batch := make([]store.Message, 0, historyBatch)
	var total store.HistoryResult
	flush := func() {
		if len(batch) == 0 {
			return
		}
		r, err := a.m.o.Store.RecordHistory(ctx, a.id, batch)
		if err != nil {
			panic(err)
		}
		total.Saved += r.Saved
		batch = batch[:0]
	}
	for _, conv := range data.GetConversations() {
		chat, err := types.ParseJID(conv.GetID())
		if err != nil {
			continue
		}
		for _, hm := range conv.GetMessages() {
			evt, err := cli.ParseWebMessage(chat, hm.GetMessage())
			if err != nil {
				continue
			}
			res, err := a.build(ctx, evt, msgbuild.SourceHistory)
			if err != nil || res.Kind != dedupe.KindChat && res.Kind != dedupe.KindReaction {
				continue
			}
			batch = append(batch, res.Message)
			if len(batch) == historyBatch {
				flush()
			}
		}
	}
	flush()
	return total.Saved
}

// inlineNotification is n messages in chats of 100 as one inline
// (bootstrap) notification.
func inlineNotification(b *testing.B, n int) *waE2E.HistorySyncNotification {
	hs := &waHistorySync.HistorySync{SyncType: waHistorySync.HistorySync_INITIAL_BOOTSTRAP.Enum()}
	base := time.Now().Add(-90 * 24 * time.Hour)
	for c := 0; c < n/100; c++ {
		peer := fmt.Sprintf("4076%07d@s.whatsapp.net", c)
		conv := &waHistorySync.Conversation{ID: proto.String(peer)}
		for i := 0; i < 100; i++ {
			k := c*100 + i
			conv.Messages = append(conv.Messages, &waHistorySync.HistorySyncMsg{Message: &waWeb.WebMessageInfo{
				Key:              &waCommon.MessageKey{RemoteJID: proto.String(peer), FromMe: proto.Bool(i%3 == 0), ID: proto.String(fmt.Sprintf("3EB0B%015d", k))},
				Message:          &waE2E.Message{Conversation: proto.String(fmt.Sprintf("history message %d of chat %d", i, c))},
				MessageTimestamp: proto.Uint64(uint64(base.Add(time.Duration(k) * time.Second).Unix())),
			}})
		}
		hs.Conversations = append(hs.Conversations, conv)
	}
	raw, err := proto.Marshal(hs)
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	zw := zlib.NewWriter(&buf)
	_, _ = zw.Write(raw)
	_ = zw.Close()
	return &waE2E.HistorySyncNotification{SyncType: waE2E.HistorySyncType_INITIAL_BOOTSTRAP.Enum(), InitialHistBootstrapInlinePayload: buf.Bytes()}
}
