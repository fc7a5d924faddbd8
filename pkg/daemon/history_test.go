package daemon_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/proto/waWeb"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/watest"
	"github.com/wactl/wactl/pkg/daemon"
	"github.com/wactl/wactl/pkg/dedupe"
	"github.com/wactl/wactl/pkg/histq"
	"github.com/wactl/wactl/pkg/store"
	fsstore "github.com/wactl/wactl/pkg/store/firestore"
	"github.com/wactl/wactl/pkg/store/journal"
)

// historyRefusingStore refuses RecordHistory while failing is set.
type historyRefusingStore struct {
	store.Store
	failing atomic.Bool
	refused atomic.Int64
}

func (f *historyRefusingStore) RecordHistory(ctx context.Context, acct string, msgs []store.Message) (store.HistoryResult, error) {
	if f.failing.Load() {
		f.refused.Add(1)
		return store.HistoryResult{}, errors.New("injected store failure")
	}
	return f.Store.RecordHistory(ctx, acct, msgs)
}

// historyChunk is conversation-major history: convs chats of per messages
// each, ids H<chunk>-<conv>-<n>.
func historyChunk(chunk, convs, per int, base time.Time) *waHistorySync.HistorySync {
	hs := &waHistorySync.HistorySync{ChunkOrder: proto.Uint32(uint32(chunk))}
	for c := 0; c < convs; c++ {
		peer := types.NewJID(fmt.Sprintf("4079%02d%06d", chunk, c), types.DefaultUserServer)
		conv := &waHistorySync.Conversation{ID: proto.String(peer.String())}
		for i := 0; i < per; i++ {
			conv.Messages = append(conv.Messages, &waHistorySync.HistorySyncMsg{Message: &waWeb.WebMessageInfo{
				Key: &waCommon.MessageKey{RemoteJID: proto.String(peer.String()), FromMe: proto.Bool(i%3 == 0),
					ID: proto.String(fmt.Sprintf("H%d-%d-%d", chunk, c, i))},
				Message:          &waE2E.Message{Conversation: proto.String(fmt.Sprintf("history %d/%d/%d", chunk, c, i))},
				MessageTimestamp: proto.Uint64(uint64(base.Add(time.Duration(i) * time.Second).Unix())),
			}})
		}
		hs.Conversations = append(hs.Conversations, conv)
	}
	return hs
}

func countHistory(t *testing.T, st store.Store, a watest.Account, chunk, convs int) int {
	t.Helper()
	n := 0
	for c := 0; c < convs; c++ {
		peer := types.NewJID(fmt.Sprintf("4079%02d%06d", chunk, c), types.DefaultUserServer)
		thread := dedupe.ThreadID(a.ID, dedupe.CanonicalJID(peer.String()))
		msgs, err := st.ListMessages(context.Background(), thread, store.Page{Limit: 1000})
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
		n += len(msgs)
	}
	return n
}

// TestHistoryStoreRefusalRecordedAfterRecovery: while the store refuses
// history batches, a history sync (blob on the media server) is still
// accepted — it is durable in the history queue — and it is recorded in
// full once the store recovers, on the embedded store and in Firestore mode
// (journal + emulator). (On ca70e15 it was acknowledged and lost.)
func TestHistoryStoreRefusalRecordedAfterRecovery(t *testing.T) {
	for _, backend := range []string{"embedded", "firestore"} {
		t.Run(backend, func(t *testing.T) {
			r, accts := newRig(t, "40711000061")
			var st store.Store = r.st
			if backend == "firestore" {
				st = journaled(t, r.dataDir)
			}
			testHistoryRefusal(t, r, accts[0], st)
		})
	}
}

// journaled is the Firestore mode's store: the emulator behind a journal.
func journaled(t *testing.T, dir string) store.Store {
	client, _ := fsemu.NewClient(t)
	fs, err := fsstore.Open(context.Background(), fsstore.Options{Client: client})
	if err != nil {
		t.Fatal(err)
	}
	j, err := journal.Open(filepath.Join(dir, "journal.db"), fs, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

func testHistoryRefusal(t *testing.T, r *rig, a watest.Account, st store.Store) {
	fs := &historyRefusingStore{Store: st}
	run := r.startWith("host-a", fs, func(o *daemon.Options) {
		o.HistoryPolicy = daemon.HistoryPolicy{StoreBackoff: func(int) time.Duration { return 50 * time.Millisecond }}
	})
	run.waitHealth(t, "connected", connected(1))
	ctx := context.Background()
	fs.failing.Store(true)
	sent, err := r.srv.SendHistoryNotification(ctx, a.Device, historyChunk(1, 5, 200, time.Now().Add(-72*time.Hour)), wafake.HistoryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	watest.Eventually(t, 15*time.Second, "refused history batch", func() bool { return fs.refused.Load() > 0 })
	if err := r.srv.WaitDelivered(ctx, a.Device, sent.ID); err != nil {
		t.Fatal(err) // accepted: it is in the durable queue
	}
	if n := countHistory(t, st, a, 1, 5); n != 0 {
		t.Fatalf("%d documents while the store refuses", n)
	}
	fs.failing.Store(false)
	watest.Eventually(t, 30*time.Second, "history recorded after recovery", func() bool {
		return countHistory(t, st, a, 1, 5) == 1000
	})
	watest.Eventually(t, 10*time.Second, "queue drained", func() bool {
		s, err := run.manager(t).HistoryStatus(ctx)
		return err == nil && s.Pending == 0 && s.Lost == 0
	})
}

// TestHistoryMediaGoneIsCountedLoss: a notification whose blob is gone
// (404) is retried with backoff, then recorded as a named loss, and the
// phone is asked for the recent chats again.
func TestHistoryMediaGoneIsCountedLoss(t *testing.T) {
	r, accts := newRig(t, "40711000062")
	run := r.startWith("host-a", r.st, func(o *daemon.Options) {
		o.HistoryPolicy = daemon.HistoryPolicy{MaxAttempts: 3, Backoff: func(int) time.Duration { return 20 * time.Millisecond },
			Poll: 20 * time.Millisecond}
	})
	run.waitHealth(t, "connected", connected(1))
	a, ctx := accts[0], context.Background()
	// One chat recorded, so a re-request has a message to anchor at.
	peer := peerJID("40799000062")
	liveID, err := r.srv.SendFromPeer(ctx, peer, a.Device.ToNonAD(), text("anchor"))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.srv.WaitDelivered(ctx, a.Device, liveID); err != nil {
		t.Fatal(err)
	}
	before := len(r.srv.Sent())
	// The blob is removed before the client can fetch it.
	r.srv.RemoveMediaOnUpload(true)
	sent, err := r.srv.SendHistoryNotification(ctx, a.Device, historyChunk(2, 1, 10, time.Now().Add(-time.Hour)), wafake.HistoryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var s daemon.HistoryStatus
	watest.Eventually(t, 15*time.Second, "loss recorded", func() bool {
		s, err = run.manager(t).HistoryStatus(ctx)
		return err == nil && s.Lost == 1 && s.Losses[0].Rerequested
	})
	if s.Pending != 0 || len(s.Losses) != 1 || s.Losses[0].MessageID != sent.ID || s.Losses[0].Reason != "history_media_unavailable" ||
		s.Losses[0].Attempts != 3 || !s.Losses[0].Rerequested {
		t.Fatalf("history status %+v", s)
	}
	watest.Eventually(t, 15*time.Second, "loss on /health and /metrics", func() bool {
		h := run.get(t, "/health")
		hist, _ := h["history"].(map[string]any)
		return hist["lost"] == 1.0 && strings.Contains(fmt.Sprint(h["warnings"]), "1 history syncs lost (1 history_media_unavailable)")
	})
	if body := getText(t, run.url+"/metrics"); !strings.Contains(body, `wactl_history_lost_total{reason="history_media_unavailable"} 1`) {
		t.Fatalf("/metrics lacks the loss:\n%s", grepLines(body, "wactl_history"))
	}
	if got := r.srv.MediaFetches(sent.MediaToken); got < 3 {
		t.Fatalf("blob fetched %d times, want a retry per attempt", got)
	}
	// The re-request is a peer message to our own phone.
	var asked bool
	for _, m := range r.srv.Sent()[before:] {
		if m.Message.GetProtocolMessage().GetPeerDataOperationRequestMessage().GetHistorySyncOnDemandRequest().GetOldestMsgID() == liveID {
			asked = true
		}
	}
	if !asked {
		t.Fatalf("no on-demand history request anchored at %s among %+v", liveID, r.srv.Sent()[before:])
	}
}

// TestHistorySkipsCounted: history messages that cannot be recorded are
// counted by reason — on the account's history counters (dashboard) and on
// /metrics — instead of vanishing (ca70e15 skipped them uncounted).
func TestHistorySkipsCounted(t *testing.T) {
	r, accts := newRig(t, "40711000063")
	run := r.start("host-a", r.st)
	run.waitHealth(t, "connected", connected(1))
	a, ctx := accts[0], context.Background()
	hs := historyChunk(3, 1, 2, time.Now().Add(-time.Hour))
	conv := hs.Conversations[0]
	conv.Messages = append(conv.Messages,
		&waHistorySync.HistorySyncMsg{Message: &waWeb.WebMessageInfo{ // no id: cannot become a document
			Key: &waCommon.MessageKey{RemoteJID: conv.ID}, Message: &waE2E.Message{Conversation: proto.String("x")},
			MessageTimestamp: proto.Uint64(uint64(time.Now().Unix())),
		}},
		&waHistorySync.HistorySyncMsg{Message: &waWeb.WebMessageInfo{ // a protocol message: nothing to record
			Key: &waCommon.MessageKey{RemoteJID: conv.ID, ID: proto.String("PROTO1")},
			Message: &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{
				Type: waE2E.ProtocolMessage_EPHEMERAL_SETTING.Enum(), EphemeralExpiration: proto.Uint32(86400)}},
			MessageTimestamp: proto.Uint64(uint64(time.Now().Unix())),
		}})
	bad := historyChunk(3, 1, 3, time.Now().Add(-time.Hour)).Conversations[0]
	bad.ID = proto.String("1.2.3@s.whatsapp.net") // not a JID
	hs.Conversations = append(hs.Conversations, bad)
	if _, err := r.srv.SendHistoryNotification(ctx, a.Device, hs, wafake.HistoryOptions{Inline: true}); err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"build_failed": 1, "protocol_message": 1, "bad_chat_jid": 3}
	var s daemon.HistoryStatus
	watest.Eventually(t, 15*time.Second, "skips counted", func() bool {
		var err error
		s, err = run.manager(t).HistoryStatus(ctx)
		return err == nil && s.Pending == 0 && len(s.PerAccountSkipped[a.ID]) == len(want)
	})
	for k, v := range want {
		if s.PerAccountSkipped[a.ID][k] != v {
			t.Fatalf("skips %v, want %v", s.PerAccountSkipped[a.ID], want)
		}
	}
	if n := countHistory(t, r.st, a, 3, 1); n != 2 {
		t.Fatalf("%d recorded, want the 2 good messages", n)
	}
	// The dashboard's history counters and /metrics show them (after the
	// next housekeeping refresh).
	watest.Eventually(t, 15*time.Second, "skips on the dashboard", func() bool {
		st := run.accountState(t, a.ID)
		h, _ := st["history"].(map[string]any)
		by, _ := h["notRecordedByReason"].(map[string]any)
		return by["bad_chat_jid"] == 3.0 && by["build_failed"] == 1.0
	})
	body := getText(t, run.url+"/metrics")
	if !strings.Contains(body, `wactl_history_not_recorded_total{account="`+a.ID+`",reason="bad_chat_jid"} 3`) {
		t.Fatalf("/metrics lacks the skip counts:\n%s", grepLines(body, "wactl_history"))
	}
	if h := run.get(t, "/health")["history"].(map[string]any); h["notRecorded"] != 5.0 {
		t.Fatalf("/health history %v, want notRecorded 5", h)
	}
}

func getText(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestHistoryBacklogOfAnotherAccountDoesNotBlock: notifications queued for
// an account this instance does not drive (offline, removed) stay queued
// and do not hold up another account's history.
func TestHistoryBacklogOfAnotherAccountDoesNotBlock(t *testing.T) {
	r, accts := newRig(t, "40711000064")
	run := r.start("host-a", r.st)
	run.waitHealth(t, "connected", connected(1))
	a, ctx := accts[0], context.Background()
	q, err := histq.Open(filepath.Join(r.dataDir, histq.FileName), histq.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	for i := 0; i < 20; i++ {
		if _, err := q.Put(ctx, "account_prod_offline", fmt.Sprintf("OFF%d", i), []byte("n")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.srv.SendHistoryNotification(ctx, a.Device, historyChunk(4, 2, 10, time.Now().Add(-time.Hour)), wafake.HistoryOptions{}); err != nil {
		t.Fatal(err)
	}
	watest.Eventually(t, 15*time.Second, "history recorded past the other account's backlog", func() bool {
		return countHistory(t, r.st, a, 4, 2) == 20
	})
	if s, _ := run.manager(t).HistoryStatus(ctx); s.PerAccountPending["account_prod_offline"] != 20 {
		t.Fatalf("the other account's backlog: %v", s.PerAccountPending)
	}
}
