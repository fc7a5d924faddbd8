package daemon_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
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
	"github.com/wactl/wactl/pkg/lock"
	"github.com/wactl/wactl/pkg/pair"
	"github.com/wactl/wactl/pkg/sessions"
	"github.com/wactl/wactl/pkg/store"
	"github.com/wactl/wactl/pkg/store/sqlite"
)

func TestMain(m *testing.M) {
	// Stalls are detected within seconds instead of minutes.
	wafake.FastKeepAlive()
	if raceEnabled {
		// A close the server starts while whatsmeow sends a keepalive ping
		// is a data race inside whatsmeow (docs/races.md); pings every few
		// seconds instead of every 300 ms make it that much rarer, and a
		// stall is still detected within the tests' waits.
		whatsmeow.KeepAliveIntervalMin = 2 * time.Second
		whatsmeow.KeepAliveIntervalMax = 3 * time.Second
	}
	os.Exit(fsemu.Main(m))
}

// rig is one host: a data dir with sessions and an embedded store, and the
// fake WhatsApp server the accounts are paired with.
type rig struct {
	t       *testing.T
	srv     *wafake.Server
	dataDir string
	sess    *sessions.Store
	st      store.Store
}

func newRig(t *testing.T, phones ...string) (*rig, []watest.Account) {
	t.Helper()
	r := &rig{t: t, srv: wafake.Start(t), dataDir: t.TempDir()}
	var err error
	if r.sess, err = sessions.Open(r.dataDir+"/sessions", sessions.Options{InstanceID: "test"}); err != nil {
		t.Fatal(err)
	}
	if r.st, err = sqlite.Open(context.Background(), sqlite.Options{Dir: r.dataDir}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.st.Close() })
	var accts []watest.Account
	for _, p := range phones {
		accts = append(accts, watest.Pair(t, r.srv, r.sess, p))
	}
	return r, accts
}

// running is one daemon.Run in this process.
type running struct {
	d      chan *daemon.Daemon
	url    string
	cancel context.CancelFunc
	done   chan error
	notes  *notes
}

type notes struct {
	mu    sync.Mutex
	lines []string
}

func (n *notes) Notify(s string) { n.mu.Lock(); n.lines = append(n.lines, s); n.mu.Unlock() }
func (n *notes) has(s string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, l := range n.lines {
		if l == s {
			return true
		}
	}
	return false
}

func (r *rig) start(instance string, st store.Store) *running {
	r.t.Helper()
	return r.startWith(instance, st, nil)
}

func (r *rig) startWith(instance string, st store.Store, adjust func(*daemon.Options)) *running {
	r.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	run := &running{url: "http://" + ln.Addr().String(), cancel: cancel, done: make(chan error, 1), notes: &notes{},
		d: make(chan *daemon.Daemon, 1)}
	addr := r.srv.Addr()
	logger := slog.New(slog.NewTextHandler(r.t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	o := daemon.Options{
		Log:      logger,
		Listener: ln, InstanceID: instance, Service: "wactl", Version: "test",
		Sessions: r.sess, Store: st, StoreBackend: "embedded",
		NewLock: func(cb lock.Callbacks) (lock.Lock, error) {
			return lock.NewEmbedded(lock.EmbeddedOptions{DataDir: r.dataDir, InstanceID: instance,
				Poll: 50 * time.Millisecond, Callbacks: cb})
		},
		Notifier:        run.notes,
		ConfigureClient: func(c *whatsmeow.Client) { wafake.ConfigureClient(c, addr) },
	}
	o.Register = func(_ *http.ServeMux, d *daemon.Daemon) { run.d <- d }
	if adjust != nil {
		adjust(&o)
	}
	go func() { run.done <- daemon.Run(ctx, o) }()
	r.t.Cleanup(func() { run.stop() })
	return run
}

func (run *running) manager(t *testing.T) *daemon.Manager {
	select {
	case d := <-run.d:
		run.d <- d
		return d.Manager()
	case <-time.After(10 * time.Second):
		t.Fatal("daemon did not start")
		return nil
	}
}

func (run *running) stop() error {
	run.cancel()
	select {
	case err := <-run.done:
		run.done <- err
		return err
	case <-time.After(15 * time.Second):
		return errors.New("daemon did not stop within 15s")
	}
}

func (run *running) get(t *testing.T, path string) map[string]any {
	t.Helper()
	resp, err := http.Get(run.url + path)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

func (run *running) waitHealth(t *testing.T, what string, cond func(m map[string]any) bool) map[string]any {
	t.Helper()
	var last map[string]any
	watest.Eventually(t, 15*time.Second, what, func() bool {
		last = run.get(t, "/health")
		return last != nil && cond(last)
	})
	return last
}

func connected(n int) func(map[string]any) bool {
	return func(m map[string]any) bool { return m["connected"] == float64(n) }
}

// accountState returns the daemon state of one account on the dashboard.
func (run *running) accountState(t *testing.T, id string) map[string]any {
	t.Helper()
	for _, a := range run.get(t, "/api/status/dashboard")["accounts"].([]any) {
		am := a.(map[string]any)
		if am["accountId"] == id {
			return am
		}
	}
	return nil
}

func peerJID(n string) types.JID { return types.NewJID(n, types.DefaultUserServer) }

func text(s string) *waE2E.Message { return &waE2E.Message{Conversation: proto.String(s)} }

func (r *rig) messages(t *testing.T, st store.Store, a watest.Account, peer types.JID) []store.Message {
	t.Helper()
	thread := dedupe.ThreadID(a.ID, dedupe.CanonicalJID(peer.String()))
	msgs, err := st.ListMessages(context.Background(), thread, store.Page{Limit: 100})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	return msgs
}

// TestRestoreRecordAndRestart: paired accounts connect on start without a
// QR, a peer message is recorded once across redelivery, a dropped socket
// and a restart, and a clean stop disconnects everything and tells systemd.
func TestRestoreRecordAndRestart(t *testing.T) {
	r, accts := newRig(t, "40711000001", "40711000002")
	run := r.start("host-a", r.st)
	m := run.waitHealth(t, "2 accounts connected", connected(2))
	if m["accounts_total"] != 2.0 || m["needs_qr"] != 0.0 || m["waMode"] != "active" {
		t.Fatalf("health %v", m)
	}
	if !run.notes.has("READY=1") {
		t.Fatal("no READY=1")
	}
	for _, a := range accts {
		if st := run.accountState(t, a.ID); st["hasDiskSession"] != true || st["status"] != "connected" {
			t.Fatalf("dashboard %v", st)
		}
	}

	ctx := context.Background()
	peer := peerJID("40799000001")
	a := accts[0]
	id, err := r.srv.SendFromPeer(ctx, peer, a.Device.ToNonAD(), text("hello  world"), wafake.MessageOptions{PushName: "Ana"})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.srv.WaitDelivered(ctx, a.Device, id); err != nil {
		t.Fatal(err)
	}
	msgs := r.messages(t, r.st, a, peer)
	if len(msgs) != 1 || msgs[0].Body != "hello  world" || msgs[0].WAMessageID != id || msgs[0].Direction != "inbound" {
		t.Fatalf("recorded %+v", msgs)
	}
	// The same id again (a sender retry) and a dropped socket.
	if _, err := r.srv.SendFromPeer(ctx, peer, a.Device.ToNonAD(), text("hello  world"), wafake.MessageOptions{ID: id}); err != nil {
		t.Fatal(err)
	}
	if err := r.srv.Inject(a.Device, wafake.FaultDrop); err != nil {
		t.Fatal(err)
	}
	watest.Eventually(t, 10*time.Second, "reconnect after drop", func() bool {
		st := run.accountState(t, a.ID)
		return st["status"] == "connected" && st["reconnectCount"].(float64) >= 1
	})
	watest.Eventually(t, 10*time.Second, "repeat delivered", func() bool { return len(r.srv.Pending(a.Device)) == 0 })
	if n := len(r.messages(t, r.st, a, peer)); n != 1 {
		t.Fatalf("%d documents after redelivery and reconnect, want 1", n)
	}

	start := time.Now()
	if err := run.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("shutdown took %s", d)
	}
	if !run.notes.has("STOPPING=1") {
		t.Fatal("no STOPPING=1")
	}
	for _, acct := range accts {
		if r.srv.IsLive(acct.Device) {
			t.Fatalf("%s still connected after shutdown", acct.ID)
		}
	}

	// Restart: restored from disk, no QR.
	pairingsBefore := pairings(r.srv)
	run2 := r.start("host-a", r.st)
	run2.waitHealth(t, "reconnected after restart", connected(2))
	if pairings(r.srv) != pairingsBefore {
		t.Fatal("restart asked for a QR")
	}
	if n := len(r.messages(t, r.st, a, peer)); n != 1 {
		t.Fatalf("%d documents after restart, want 1", n)
	}
	for _, acct := range accts {
		if got := r.srv.MaxConcurrent(acct.Device); got != 1 {
			t.Fatalf("%s had %d live connections at once", acct.ID, got)
		}
	}
}

func pairings(s *wafake.Server) int {
	n := 0
	for _, c := range s.Connections() {
		if c.Pairing {
			n++
		}
	}
	return n
}

// failingStore refuses RecordMessage while failing is set: a store outage.
type failingStore struct {
	store.Store
	failing atomic.Bool
	refused atomic.Int64
}

func (f *failingStore) RecordMessage(ctx context.Context, m store.Message) (store.Outcome, error) {
	if f.failing.Load() {
		f.refused.Add(1)
		return 0, errors.New("injected store failure")
	}
	return f.Store.RecordMessage(ctx, m)
}

// TestStoreFailureIsNotAcknowledged: while the store refuses, the handler
// reports failure, no receipt goes out and the message stays pending at
// the server; redelivered after recovery it is recorded once.
func TestStoreFailureIsNotAcknowledged(t *testing.T) {
	r, accts := newRig(t, "40711000011")
	fs := &failingStore{Store: r.st}
	run := r.start("host-a", fs)
	run.waitHealth(t, "connected", connected(1))
	a, peer, ctx := accts[0], peerJID("40799000011"), context.Background()

	fs.failing.Store(true)
	id, err := r.srv.SendFromPeer(ctx, peer, a.Device.ToNonAD(), text("keep me"))
	if err != nil {
		t.Fatal(err)
	}
	watest.Eventually(t, 10*time.Second, "refused write", func() bool { return fs.refused.Load() > 0 })
	time.Sleep(300 * time.Millisecond) // a receipt, if one were sent, would have arrived
	if p := r.srv.Pending(a.Device); len(p) != 1 || p[0] != id {
		t.Fatalf("message acknowledged although not stored: pending %v", p)
	}
	if n := len(r.messages(t, r.st, a, peer)); n != 0 {
		t.Fatalf("%d documents while failing", n)
	}
	fs.failing.Store(false)
	r.srv.Redeliver(a.Device)
	if err := r.srv.WaitDelivered(ctx, a.Device, id); err != nil {
		t.Fatal(err)
	}
	msgs := r.messages(t, r.st, a, peer)
	if len(msgs) != 1 || msgs[0].Body != "keep me" {
		t.Fatalf("after recovery: %+v", msgs)
	}
}

// TestFaultsShowInHealth: logout, stream replaced, temporary ban, client
// outdated and a stall each end in the right state.
func TestFaultsShowInHealth(t *testing.T) {
	r, accts := newRig(t, "40711000021", "40711000022", "40711000023", "40711000024", "40711000025")
	run := r.start("host-a", r.st)
	run.waitHealth(t, "all connected", connected(5))
	logout, replaced, banned, outdated, stalled := accts[0], accts[1], accts[2], accts[3], accts[4]
	for a, f := range map[watest.Account]wafake.Fault{
		logout: wafake.FaultLogout, replaced: wafake.FaultStreamReplaced, banned: wafake.FaultTempBan,
		outdated: wafake.FaultClientOutdated, stalled: wafake.FaultStall,
	} {
		if err := r.srv.Inject(a.Device, f); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	want := map[string][2]string{ // account → {state, contract status}
		logout.ID:   {"needs_qr", "needs_qr"},
		replaced.ID: {"replaced", "disconnected"},
		banned.ID:   {"banned", "disconnected"},
		outdated.ID: {"client_outdated", "disconnected"},
	}
	for id, w := range want {
		watest.Eventually(t, 10*time.Second, id+" → "+w[0], func() bool {
			st := run.accountState(t, id)
			return st["state"] == w[0] && st["status"] == w[1]
		})
	}
	watest.Eventually(t, 15*time.Second, "stalled account reconnects", func() bool {
		st := run.accountState(t, stalled.ID)
		return st["state"] == "connected" && st["reconnectCount"].(float64) >= 1
	})
	m := run.get(t, "/health")
	if m["needs_qr"] != 1.0 || m["connected"] != 1.0 || m["accounts_total"] != 5.0 {
		t.Fatalf("health %v", m)
	}
	if st := run.accountState(t, logout.ID); st["hasDiskSession"] != false {
		t.Fatalf("logged-out account still claims a session: %v", st)
	}
	if st := run.accountState(t, banned.ID); st["bannedUntil"] == nil {
		t.Fatalf("ban without expiry: %v", st)
	}
	// The replaced account is not fought for: one connection only.
	time.Sleep(300 * time.Millisecond)
	if r.srv.IsLive(replaced.Device) {
		t.Fatal("replaced account reconnected")
	}
	// Account documents mirror the states.
	watest.Eventually(t, 5*time.Second, "account document", func() bool {
		doc, err := r.st.GetAccount(context.Background(), logout.ID)
		return err == nil && doc.Status == "needs_qr" && doc.RequiresQR
	})
}

// TestTwoInstancesNeverOverlap: two daemons on one data dir; the second
// waits PASSIVE, takes over when the first stops, and no device ever has
// two live connections.
func TestTwoInstancesNeverOverlap(t *testing.T) {
	r, accts := newRig(t, "40711000031", "40711000032", "40711000033")
	first := r.start("host-a", r.st)
	first.waitHealth(t, "first active", connected(3))
	second := r.start("host-b", r.st)
	m := second.waitHealth(t, "second passive", func(m map[string]any) bool { return m["waMode"] == "passive" })
	if m["connected"] != 0.0 || m["accounts_total"] != 3.0 {
		t.Fatalf("passive instance: %v", m)
	}
	if err := first.stop(); err != nil {
		t.Fatal(err)
	}
	second.waitHealth(t, "second takes over", func(m map[string]any) bool {
		return m["waMode"] == "active" && m["connected"] == 3.0
	})
	for _, a := range accts {
		if got := r.srv.MaxConcurrent(a.Device); got != 1 {
			t.Fatalf("%s: %d live connections at once", a.ID, got)
		}
	}
}

func TestHealthBurstAgainstDaemon(t *testing.T) {
	r, _ := newRig(t)
	run := r.start("host-a", r.st)
	run.waitHealth(t, "up", func(m map[string]any) bool { return m["waMode"] == "active" })
	var bad atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, 50)
	for i := 0; i < 1000; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			resp, err := http.Get(run.url + "/health")
			if err != nil || resp.StatusCode != 200 {
				bad.Add(1)
			}
			if resp != nil {
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d of 1000 failed", bad.Load())
	}
	_ = fmt.Sprint()
}

// TestPairThroughDaemon: `wactl pair` talks to the running daemon over its
// admin socket; the daemon shows the codes, the fake phone scans, and the
// account is connected and recording at once.
func TestPairThroughDaemon(t *testing.T) {
	r, _ := newRig(t)
	run := r.startWith("host-a", r.st, func(o *daemon.Options) { o.AdminSocket = r.dataDir + "/wactl.sock" })
	run.waitHealth(t, "active", func(m map[string]any) bool { return m["waMode"] == "active" })
	ctx := context.Background()
	admin, err := daemon.DialAdmin(r.dataDir)
	if err != nil {
		t.Fatal(err)
	}
	phone := "40711000041"
	id, _ := dedupe.AccountID("prod", phone, "40")
	var codes int
	out, err := admin.Pair(ctx, daemon.PairRequest{AccountID: id, Phone: "+" + phone, Name: "Shop"}, func(e pair.Event) {
		if e.Kind == pair.KindQR {
			codes++
			if _, err := r.srv.Scan(ctx, e.Code, phone); err != nil {
				t.Errorf("scan: %v", err)
			}
		}
	})
	if err != nil || out.Outcome != pair.OutcomePaired {
		t.Fatalf("outcome %+v, err %v", out, err)
	}
	if codes != 1 {
		t.Fatalf("%d codes shown", codes)
	}
	run.waitHealth(t, "paired account connected", connected(1))
	st := run.accountState(t, id)
	if st["hasDiskSession"] != true || st["name"] != "Shop" {
		t.Fatalf("%v", st)
	}

	// A second pairing of the same account is refused without --force.
	out, _ = admin.Pair(ctx, daemon.PairRequest{AccountID: id, Phone: "+" + phone}, nil)
	if out.Outcome != pair.OutcomeError || !strings.Contains(out.Error, "force") {
		t.Fatalf("re-pair without force: %+v", out)
	}

	// The wrong phone scanning is refused and nothing is kept.
	other := "40711000042"
	id2, _ := dedupe.AccountID("prod", other, "40")
	out, _ = admin.Pair(ctx, daemon.PairRequest{AccountID: id2, Phone: "+" + other}, func(e pair.Event) {
		if e.Kind == pair.KindQR {
			r.srv.Scan(ctx, e.Code, "40799999999")
		}
	})
	if out.Outcome != pair.OutcomeRefused {
		t.Fatalf("wrong phone: %+v", out)
	}
	// It was created by this pairing: nothing of it is left (issue 17).
	if st := run.accountState(t, id2); len(st) != 0 {
		t.Fatalf("refused account left behind: %v", st)
	}
}

// TestHistorySyncWithLiveRepeat: a history sync carrying older messages and
// a repeat of a live one adds only the older ones, the counters say so, and
// the thread's last message time does not move back.
func TestHistorySyncWithLiveRepeat(t *testing.T) {
	r, accts := newRig(t, "40711000051")
	run := r.start("host-a", r.st)
	run.waitHealth(t, "connected", connected(1))
	a, peer, ctx := accts[0], peerJID("40799000051"), context.Background()
	liveID, err := r.srv.SendFromPeer(ctx, peer, a.Device.ToNonAD(), text("live"))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.srv.WaitDelivered(ctx, a.Device, liveID); err != nil {
		t.Fatal(err)
	}
	thread := dedupe.ThreadID(a.ID, dedupe.CanonicalJID(peer.String()))
	before, err := r.st.GetThread(ctx, thread)
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-48 * time.Hour)
	msg := func(id, body string, ts time.Time, fromMe bool) *waHistorySync.HistorySyncMsg {
		return &waHistorySync.HistorySyncMsg{Message: &waWeb.WebMessageInfo{
			Key:              &waCommon.MessageKey{RemoteJID: proto.String(peer.String()), FromMe: proto.Bool(fromMe), ID: proto.String(id)},
			Message:          text(body),
			MessageTimestamp: proto.Uint64(uint64(ts.Unix())),
		}}
	}
	hs := &waHistorySync.HistorySync{Conversations: []*waHistorySync.Conversation{{
		ID: proto.String(peer.String()),
		Messages: []*waHistorySync.HistorySyncMsg{
			msg("OLD1", "older in", old, false), msg("OLD2", "older out", old.Add(time.Minute), true),
			msg(liveID, "live", time.Now(), false),
		},
	}}}
	if _, err := r.srv.SendHistorySync(ctx, a.Device, hs); err != nil {
		t.Fatal(err)
	}
	watest.Eventually(t, 10*time.Second, "history recorded", func() bool {
		return len(r.messages(t, r.st, a, peer)) == 3
	})
	msgs := r.messages(t, r.st, a, peer)
	sources := map[string]string{}
	for _, m := range msgs {
		sources[m.WAMessageID] = m.Source
	}
	if sources[liveID] != "realtime" || sources["OLD1"] != "history_sync" || sources["OLD2"] != "history_sync" {
		t.Fatalf("sources %v", sources)
	}
	after, _ := r.st.GetThread(ctx, thread)
	if after.LastMessageAt.Before(before.LastMessageAt) || after.LastMessageText != "live" {
		t.Fatalf("thread moved back: before %v after %v (%q)", before.LastMessageAt, after.LastMessageAt, after.LastMessageText)
	}
	watest.Eventually(t, 10*time.Second, "history counters", func() bool {
		h := run.get(t, "/health")["history"].(map[string]any)
		return h["wrote"] == 2.0 && h["skipped"] == 1.0 && h["lastRunAt"] != nil
	})
}

// TestAccountControls drives the controls the app's API uses against the
// real client and the fake server: add (QR shows), pair by scanning it,
// send with a chosen id (twice: one WhatsApp message), disconnect, reset
// (session dropped, needs QR) and soft delete (session kept under removed/).
func TestAccountControls(t *testing.T) {
	r, _ := newRig(t)
	run := r.startWith("host-a", r.st, nil)
	run.waitHealth(t, "active", func(m map[string]any) bool { return m["waMode"] == "active" })
	mgr := run.manager(t)
	ctx := context.Background()
	phone := "40711000061"
	id, _ := dedupe.AccountID("prod", phone, "40")
	if err := mgr.AddAccount(ctx, daemon.AddAccountRequest{AccountID: id, Name: "Desk", Phone: "+" + phone}); err != nil {
		t.Fatal(err)
	}
	var qr string
	watest.Eventually(t, 10*time.Second, "QR code", func() bool {
		p, ok := mgr.Pairing(id)
		qr = p.QR
		return ok && qr != ""
	})
	if err := mgr.AddAccount(ctx, daemon.AddAccountRequest{AccountID: id, Phone: "+" + phone}); !errors.Is(err, daemon.ErrPairingInProgress) {
		t.Fatalf("second add while pairing: %v", err)
	}
	jid, err := r.srv.Scan(ctx, qr, phone)
	if err != nil {
		t.Fatal(err)
	}
	run.waitHealth(t, "connected", connected(1))
	watest.Eventually(t, 5*time.Second, "pairing flag cleared", func() bool { _, ok := mgr.Pairing(id); return !ok })

	peer := peerJID("40799000061")
	for i := 0; i < 2; i++ { // a retry of the same request reuses the id
		if _, err := mgr.SendText(ctx, id, peer, "hi", "3EB0AABBCCDDEEFF0011"); err != nil {
			t.Fatal(err)
		}
	}
	if got := r.srv.SentByID("3EB0AABBCCDDEEFF0011"); len(got) == 0 || got[0].To.User != peer.User {
		t.Fatalf("sent %+v", got)
	}

	if err := mgr.Disconnect(ctx, id); err != nil {
		t.Fatal(err)
	}
	if st := run.accountState(t, id); st["state"] != "stopped" || r.srv.IsLive(jid) {
		t.Fatalf("after disconnect: %v", st)
	}
	if _, err := mgr.SendText(ctx, id, peer, "x", "3EB0AABBCCDDEEFF0012"); !errors.Is(err, daemon.ErrNotConnected) {
		t.Fatalf("send while stopped: %v", err)
	}
	if err := mgr.Reset(ctx, id); err != nil {
		t.Fatal(err)
	}
	if st := run.accountState(t, id); st["status"] != "needs_qr" || st["hasDiskSession"] != false {
		t.Fatalf("after reset: %v", st)
	}
	if !r.srv.IsRemoved(jid) {
		t.Fatal("reset did not log the device out at WhatsApp")
	}
	if err := mgr.Rename(ctx, id, "Front"); err != nil {
		t.Fatal(err)
	}
	if err := mgr.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	doc, err := r.st.GetAccount(ctx, id)
	if err != nil || doc.Status != "deleted" || doc.DeletedAt.IsZero() || doc.Name != "Front" {
		t.Fatalf("deleted doc %+v %v", doc, err)
	}
	if st := run.accountState(t, id); st != nil {
		t.Fatalf("deleted account still listed: %v", st)
	}
	if err := mgr.RegenerateQR(ctx, "account_prod_00000000000000000000000000000000"); !errors.Is(err, daemon.ErrNoAccount) {
		t.Fatalf("unknown account: %v", err)
	}
}

// TestStaleAccountRecycledOnce: a connected account silent for StaleAfter
// is recycled once (reconnected), then only reported stale while it stays
// silent; traffic clears it. systemd hears STATUS= and watchdog pings.
func TestStaleAccountRecycledOnce(t *testing.T) {
	r, accts := newRig(t, "40711000081")
	run := r.startWith("host-a", r.st, func(o *daemon.Options) {
		o.StaleAfter = 400 * time.Millisecond
		o.Watchdog = 300 * time.Millisecond
	})
	run.waitHealth(t, "connected", connected(1))
	a := accts[0]
	watest.Eventually(t, 10*time.Second, "recycled once", func() bool {
		st := run.accountState(t, a.ID)
		return st["reconnectCount"] == 1.0 && st["state"] == "connected"
	})
	watest.Eventually(t, 5*time.Second, "reported stale", func() bool {
		return run.accountState(t, a.ID)["isStale"] == true
	})
	m := run.get(t, "/health")
	if m["status"] != "degraded" || len(m["warnings"].([]any)) == 0 {
		t.Fatalf("stale account not on /health: %v", m)
	}
	time.Sleep(time.Second)
	if st := run.accountState(t, a.ID); st["reconnectCount"] != 1.0 {
		t.Fatalf("recycled again without traffic: %v", st)
	}
	// Traffic: no longer stale.
	id, err := r.srv.SendFromPeer(context.Background(), peerJID("40799000081"), a.Device.ToNonAD(), text("ping"))
	if err != nil {
		t.Fatal(err)
	}
	r.srv.WaitDelivered(context.Background(), a.Device, id)
	if st := run.accountState(t, a.ID); st["isStale"] != false {
		t.Fatalf("still stale after a message: %v", st)
	}
	watest.Eventually(t, 5*time.Second, "watchdog ping and status line", func() bool {
		return run.notes.has("WATCHDOG=1") && run.notes.has("STATUS=1/1 connected, lease held")
	})
}

// TestActiveAgainAfterPassive: one daemon loses the lease (its lock file
// is deleted under it), steps down, takes the lease again, reconnects its
// account and keeps mirroring account state.
func TestActiveAgainAfterPassive(t *testing.T) {
	r, accts := newRig(t, "40711000091")
	run := r.start("host-a", r.st)
	run.waitHealth(t, "connected", connected(1))
	removed := time.Now()
	if err := os.Remove(filepath.Join(r.dataDir, lock.LockFileName)); err != nil {
		t.Fatal(err)
	}
	watest.Eventually(t, 10*time.Second, "a new login after stepping down", func() bool {
		for _, c := range r.srv.DeviceConnections(accts[0].Device) {
			if c.Opened.After(removed) && !c.LoggedIn.IsZero() && c.Open() {
				return run.accountState(t, accts[0].ID)["status"] == "connected"
			}
		}
		return false
	})
	ctx := context.Background()
	if err := run.manager(t).Rename(ctx, accts[0].ID, "Renamed"); err != nil {
		t.Fatal(err)
	}
	watest.Eventually(t, 5*time.Second, "account document follows", func() bool {
		doc, err := r.st.GetAccount(ctx, accts[0].ID)
		return err == nil && doc.Name == "Renamed" && doc.Status == "connected"
	})
	if got := r.srv.MaxConcurrent(accts[0].Device); got != 1 {
		t.Fatalf("%d live connections at once", got)
	}
}
