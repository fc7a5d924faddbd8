package api

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wactl/wactl/pkg/daemon"
	"github.com/wactl/wactl/pkg/dedupe"
	"github.com/wactl/wactl/pkg/store"
	"github.com/wactl/wactl/pkg/store/msgbuild"
)

const (
	sendAcc  = "account_prod_cd7b11e308a59fd9ab810bce5faf8393"
	peerJID  = "40722999888@s.whatsapp.net"
	peerPath = "/api/whatsapp/send-message"
)

var sendThread = dedupe.ThreadID(sendAcc, peerJID)

func reqID(n int) string { return fmt.Sprintf("%064x", n+0xabc000) }

func docs(t testing.TB, st store.Store) []store.Message {
	t.Helper()
	ms, err := st.ListMessages(context.Background(), sendThread, store.Page{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// proxyEnqueue writes what the app's proxy writes for a send: the outbox
// item and the queued message document under the requestId.
func proxyEnqueue(t testing.TB, st store.Store, key, body string, at time.Time) {
	t.Helper()
	ctx := context.Background()
	if _, err := st.EnqueueOutbox(ctx, store.OutboxItem{RequestID: key, AccountID: sendAcc, ToJID: peerJID, ThreadID: sendThread,
		ClientMessageID: "cm-" + key[:6], Body: body, Status: "queued", CreatedAt: at, CreatedByUID: "app-user"}); err != nil {
		t.Fatal(err)
	}
	m, err := msgbuild.BuildOutbound(msgbuild.Outbound{AccountID: sendAcc, ToJID: peerJID, RequestID: key, ClientMessageID: "cm-" + key[:6],
		Body: body, Status: "queued", At: at})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.RecordMessage(ctx, m); err != nil {
		t.Fatal(err)
	}
}

func TestSendIdempotentAcrossPaths(t *testing.T) {
	e := newEnv(t)
	testSendIdempotentAcrossPaths(t, e)
}

func testSendIdempotentAcrossPaths(t *testing.T, e *env) {
	e.wa.addAccount(sendAcc, "+40722000111", daemon.StateConnected)
	w := e.api.OutboxWorker(WorkerOptions{Claimer: "inst-a", Fence: func() (int64, bool) { return 1, true }})
	key := reqID(1)
	// The proxy queued it; the Cloud Function POSTs it three times (its
	// retries) while the worker polls at the same time.
	proxyEnqueue(t, e.st, key, "hello from the app", e.clk.Now())
	body := map[string]any{"accountId": sendAcc, "to": "+40 722 999 888", "message": "hello from the app", "threadId": sendThread}
	var wg sync.WaitGroup
	answers := make([]resp, 3)
	for i := range answers {
		wg.Add(1)
		go func() { defer wg.Done(); answers[i] = e.do("POST", peerPath, e.svc, body, "X-Request-ID", key) }()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if _, err := w.Poll(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	wg.Wait()
	// Whatever ran first, later polls complete the item without sending.
	if _, err := w.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantID := DeriveMessageID(sendAcc, key)
	sent, dup := 0, 0
	for _, r := range answers {
		if r.code != 200 || r.str("messageId") != wantID {
			t.Fatalf("answer %d %s", r.code, r.raw)
		}
		if r.body["duplicate"] == true {
			dup++
		} else if r.str("status") == "sent" {
			sent++
		}
	}
	if sends := e.wa.sent(); len(sends) != 1 || sends[0].ID != wantID || sends[0].To != peerJID {
		t.Fatalf("WhatsApp got %+v, want exactly one send with id %s", sends, wantID)
	}
	if sent+dup != 3 || sent > 1 {
		t.Fatalf("answers: %d sent, %d duplicate", sent, dup)
	}
	ds := docs(t, e.st)
	if len(ds) != 1 || ds[0].DocID != key || ds[0].Status != "sent" || ds[0].WAMessageID != wantID || ds[0].Body != "hello from the app" {
		t.Fatalf("documents %+v", ds)
	}
	it, err := e.st.GetOutbox(context.Background(), key)
	if err != nil || it.Status != "sent" || it.ProviderMessageID != wantID {
		t.Fatalf("outbox %+v %v", it, err)
	}
	// A fourth request, much later: duplicate, nothing sent.
	r := e.do("POST", peerPath, e.svc, body, "X-Request-ID", key)
	if r.body["duplicate"] != true || len(e.wa.sent()) != 1 {
		t.Fatalf("late repeat %s", r.raw)
	}
	if n := e.api.send.locks.held(); n != 0 {
		t.Fatalf("%d key locks leaked", n)
	}
}

func TestSendDirect(t *testing.T) {
	e := newEnv(t)
	e.wa.addAccount(sendAcc, "+40722000111", daemon.StateConnected)
	key := reqID(2)
	body := map[string]any{"accountId": sendAcc, "to": "40722999888", "text": "direct"}
	for i := 0; i < 3; i++ {
		r := e.do("POST", peerPath, e.admin, body, "X-Request-ID", key)
		if r.code != 200 || r.str("messageId") != DeriveMessageID(sendAcc, key) || (i == 0) == (r.body["duplicate"] == true) {
			t.Fatalf("send %d: %d %s", i, r.code, r.raw)
		}
		if i == 0 && (r.str("status") != "sent" || r.str("docId") != key) {
			t.Fatalf("first send %s", r.raw)
		}
	}
	if n := len(e.wa.sent()); n != 1 {
		t.Fatalf("%d sends", n)
	}
	if ds := docs(t, e.st); len(ds) != 1 || ds[0].Status != "sent" || ds[0].DocID != key || ds[0].Source != "outbound" {
		t.Fatalf("documents %+v", ds)
	}
	// clientMessageId is the key when there is no X-Request-ID.
	b2 := map[string]any{"accountId": sendAcc, "toJid": peerJID, "message": "by client id", "clientMessageId": "app-msg-77"}
	r1 := e.do("POST", peerPath, e.admin, b2)
	r2 := e.do("POST", peerPath, e.admin, b2)
	if r1.str("status") != "sent" || r2.body["duplicate"] != true || len(e.wa.sent()) != 2 {
		t.Fatalf("clientMessageId: %s / %s", r1.raw, r2.raw)
	}
}

func TestSendQueuedWhenNotConnected(t *testing.T) { testSendQueued(t, newEnv(t)) }

func testSendQueued(t *testing.T, e *env) {
	e.wa.addAccount(sendAcc, "+40722000111", daemon.StateReconnecting)
	w := e.api.OutboxWorker(WorkerOptions{Claimer: "inst-a", Fence: func() (int64, bool) { return 1, true }})
	key := reqID(3)
	body := map[string]any{"accountId": sendAcc, "to": peerJID, "message": "later"}
	r := e.do("POST", peerPath, e.admin, body, "X-Request-ID", key)
	if r.code != 200 || r.body["queued"] != true || r.str("messageId") != DeriveMessageID(sendAcc, key) || r.body["duplicate"] != false {
		t.Fatalf("%d %s", r.code, r.raw)
	}
	if r := e.do("POST", peerPath, e.admin, body, "X-Request-ID", key); r.body["queued"] != true || r.body["duplicate"] != true {
		t.Fatalf("repeat while queued: %s", r.raw)
	}
	if ds := docs(t, e.st); len(ds) != 1 || ds[0].Status != "queued" || ds[0].DocID != key {
		t.Fatalf("queued document %+v", ds)
	}
	// Not connected: the worker waits without sending or failing.
	if _, err := w.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	it, _ := e.st.GetOutbox(context.Background(), key)
	if it.Status != "queued" || len(e.wa.sent()) != 0 || !it.NextAttemptAt.After(e.clk.Now()) {
		t.Fatalf("outbox while disconnected %+v", it)
	}
	e.wa.setState(sendAcc, daemon.StateConnected)
	e.clk.Add(time.Minute)
	if _, err := w.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := e.wa.sent(); len(s) != 1 || s[0].Body != "later" {
		t.Fatalf("sends %+v", s)
	}
	if ds := docs(t, e.st); len(ds) != 1 || ds[0].Status != "sent" {
		t.Fatalf("documents after send %+v", ds)
	}
	if it, _ := e.st.GetOutbox(context.Background(), key); it.Status != "sent" {
		t.Fatalf("outbox %+v", it)
	}
	if r := e.do("POST", peerPath, e.admin, body, "X-Request-ID", key); r.body["duplicate"] != true || len(e.wa.sent()) != 1 {
		t.Fatalf("after the worker: %s", r.raw)
	}
}

func TestOutboxRetriesThenFails(t *testing.T) {
	e := newEnv(t)
	e.wa.addAccount(sendAcc, "+40722000111", daemon.StateConnected)
	e.wa.sendErr = errors.New("server returned error 479")
	w := e.api.OutboxWorker(WorkerOptions{Claimer: "inst-a", Fence: func() (int64, bool) { return 1, true },
		MaxAttempts: 3, BaseBackoff: time.Second, MaxBackoff: 3 * time.Second})
	key := reqID(4)
	proxyEnqueue(t, e.st, key, "doomed", e.clk.Now())
	var waits []time.Duration
	for i := 0; i < 3; i++ {
		if n, err := w.Poll(context.Background()); err != nil || n != 1 {
			t.Fatalf("poll %d: %d %v", i, n, err)
		}
		it, _ := e.st.GetOutbox(context.Background(), key)
		if i < 2 {
			if it.Status != "queued" || !strings.Contains(it.LastError, "479") {
				t.Fatalf("after attempt %d: %+v", i+1, it)
			}
			waits = append(waits, it.NextAttemptAt.Sub(e.clk.Now()))
			// Not due before the backoff.
			if n, _ := w.Poll(context.Background()); n != 0 {
				t.Fatal("claimed before its backoff")
			}
			e.clk.Add(waits[i])
		} else if it.Status != "failed" || it.AttemptCount != 3 {
			t.Fatalf("after the last attempt: %+v", it)
		}
	}
	if waits[0] != time.Second || waits[1] != 2*time.Second {
		t.Fatalf("backoff %v, want 1s 2s", waits)
	}
	// One document still, marked failed so the app stops showing it as
	// queued forever.
	if ds := docs(t, e.st); len(ds) != 1 || ds[0].Status != "failed" || ds[0].WAMessageID != "" {
		t.Fatalf("document %+v", ds)
	}
	if r := e.do("POST", peerPath, e.svc, map[string]any{"accountId": sendAcc, "to": peerJID, "message": "doomed"}, "X-Request-ID", key); r.body["duplicate"] != true || r.str("status") != "failed" {
		t.Fatalf("repeat of a failed item: %s", r.raw)
	}
}

// A worker that crashed after WhatsApp accepted the send and before the
// document was written: its claim expires, the next worker sends again
// with the same derived id (WhatsApp clients see one message) and the store
// still holds one document.
func TestOutboxCrashBetweenSendAndComplete(t *testing.T) {
	e := newEnv(t)
	e.wa.addAccount(sendAcc, "+40722000111", daemon.StateConnected)
	key := reqID(5)
	proxyEnqueue(t, e.st, key, "after a crash", e.clk.Now())
	ctx := context.Background()
	items, err := e.st.ClaimOutbox(ctx, "dead-instance", 1, time.Minute, 10)
	if err != nil || len(items) != 1 {
		t.Fatalf("claim %v %v", items, err)
	}
	to, _ := ParseRecipient(peerJID, "")
	if _, err := e.wa.SendText(ctx, sendAcc, to, "after a crash", DeriveMessageID(sendAcc, key)); err != nil {
		t.Fatal(err)
	}
	// …crash. A live claim is not taken over.
	w := e.api.OutboxWorker(WorkerOptions{Claimer: "inst-a", Fence: func() (int64, bool) { return 2, true }})
	if n, _ := w.Poll(ctx); n != 0 {
		t.Fatal("took over a live claim")
	}
	e.clk.Add(time.Minute + time.Second)
	if n, err := w.Poll(ctx); err != nil || n != 1 {
		t.Fatalf("reclaim %d %v", n, err)
	}
	s := e.wa.sent()
	if len(s) != 2 || s[0].ID != s[1].ID {
		t.Fatalf("resend must reuse the id: %+v", s)
	}
	if ds := docs(t, e.st); len(ds) != 1 || ds[0].Status != "sent" || ds[0].DocID != key {
		t.Fatalf("documents %+v", ds)
	}
}

func TestOutboxPassiveIdles(t *testing.T) {
	e := newEnv(t)
	e.wa.addAccount(sendAcc, "+40722000111", daemon.StateConnected)
	proxyEnqueue(t, e.st, reqID(6), "wait", e.clk.Now())
	active := false
	w := e.api.OutboxWorker(WorkerOptions{Claimer: "inst-a", Fence: func() (int64, bool) { return 1, active }})
	if n, _ := w.Poll(context.Background()); n != 0 || len(e.wa.sent()) != 0 {
		t.Fatal("PASSIVE worker claimed")
	}
	active = true
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for len(e.wa.sent()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(e.wa.sent()) != 1 {
		t.Fatal("Run did not send")
	}
}

func TestSendValidation(t *testing.T) {
	e := newEnv(t)
	e.wa.addAccount(sendAcc, "+40722000111", daemon.StateConnected)
	for _, c := range []struct {
		body map[string]any
		code int
		want string
	}{
		{map[string]any{"accountId": sendAcc, "to": "hello", "message": "x"}, 400, "character"},
		{map[string]any{"accountId": sendAcc, "to": "123@broadcast", "message": "x"}, 400, "supported"},
		{map[string]any{"accountId": sendAcc, "to": "1@s.whatsapp.net", "message": "x"}, 400, "8 to 15"},
		{map[string]any{"accountId": sendAcc, "to": peerJID, "toJid": "40722999887@s.whatsapp.net", "message": "x"}, 400, "differ"},
		{map[string]any{"accountId": sendAcc, "to": peerJID, "message": "  "}, 400, "empty"},
		{map[string]any{"accountId": sendAcc, "to": peerJID, "message": strings.Repeat("é", 10001)}, 400, "10000"},
		{map[string]any{"accountId": sendAcc, "to": peerJID, "message": "x", "threadId": sendAcc + "__other@s.whatsapp.net"}, 400, "threadId"},
		{map[string]any{"accountId": sendAcc, "to": peerJID, "message": "x", "clientMessageId": "a/b"}, 400, "clientMessageId"},
		{map[string]any{"to": peerJID, "message": "x"}, 400, "accountId"},
		{map[string]any{"accountId": "account_prod_nope", "to": peerJID, "message": "x"}, 404, "no account"},
		{map[string]any{"accountId": sendAcc, "to": peerJID, "message": "x", "priority": 1}, 400, "unknown field"},
	} {
		r := e.do("POST", peerPath, e.admin, c.body)
		if r.code != c.code || !strings.Contains(r.str("message"), c.want) {
			t.Errorf("%.80v: %d %s", c.body, r.code, r.raw)
		}
	}
	if len(e.wa.sent()) != 0 {
		t.Fatal("an invalid request was sent")
	}
}

func TestDeriveMessageID(t *testing.T) {
	a := DeriveMessageID(sendAcc, reqID(1))
	if len(a) != 22 || !strings.HasPrefix(a, "3EB0") || strings.ToUpper(a) != a {
		t.Fatalf("id %q is not in whatsmeow's web format", a)
	}
	if a != DeriveMessageID(sendAcc, reqID(1)) || a == DeriveMessageID(sendAcc, reqID(2)) || a == DeriveMessageID("account_prod_other", reqID(1)) {
		t.Fatal("id not a function of account and key")
	}
}
