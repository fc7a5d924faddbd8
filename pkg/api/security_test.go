package api

// Attacks of issue 16 on the API, each a test that failed before its fix
// (docs/security.md lists them with their item numbers).

import (
	"context"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/pkg/daemon"
	"github.com/wactl/wactl/pkg/dedupe"
	"github.com/wactl/wactl/pkg/store"
	"github.com/wactl/wactl/pkg/store/firestore"
	"github.com/wactl/wactl/pkg/store/msgbuild"
)

// newFSEnv is newEnv on the Firestore emulator.
func newFSEnv(t *testing.T, opts ...envOpt) *env {
	t.Helper()
	client, _ := fsemu.NewClient(t)
	clk := newClock()
	st, err := firestore.Open(context.Background(), firestore.Options{Client: client, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return newEnvWithStore(t, st, clk, opts...)
}

// bothStores runs fn on the embedded store and on the Firestore emulator.
func bothStores(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, newEnv(t)) })
	t.Run("firestore", func(t *testing.T) { fn(t, newFSEnv(t)) })
}

func outboxCount(t testing.TB, st store.Store, keys ...string) int {
	t.Helper()
	n := 0
	for _, k := range keys {
		if _, err := st.GetOutbox(context.Background(), k); err == nil {
			n++
		}
	}
	return n
}

// Item 2: an X-Request-ID that is not one document id is refused (it was
// queued at outbox/x/y/z, never sent, or answered 503 forever); so is a
// present but unusable one (129 characters, non-ASCII), which used to be
// replaced silently by a generated key.
func TestSendRequestIDValidated(t *testing.T) {
	bothStores(t, func(t *testing.T, e *env) {
		e.wa.addAccount(sendAcc, "+40722000111", daemon.StateReconnecting)
		body := map[string]any{"accountId": sendAcc, "to": peerJID, "message": "hi"}
		bad := []string{"x/y/z", "a/b", "..", ".", "__x__", "__name__", strings.Repeat("k", 129), "caf\xc3\xa9", "gen_0123456789abcdef0123456789abcdef"}
		for _, k := range bad {
			r := e.do("POST", peerPath, e.admin, body, "X-Request-ID", k)
			if r.code != 400 || r.str("error") != "invalid_request_id" || !strings.Contains(r.str("message"), "X-Request-ID") {
				t.Errorf("X-Request-ID %.40q: %d %s", k, r.code, r.raw)
			}
		}
		// The same rules for clientMessageId, the key without a header.
		for _, k := range []string{"__name__", "gen_abc"} {
			b := map[string]any{"accountId": sendAcc, "to": peerJID, "message": "hi", "clientMessageId": k}
			if r := e.do("POST", peerPath, e.admin, b); r.code != 400 {
				t.Errorf("clientMessageId %q: %d %s", k, r.code, r.raw)
			}
		}
		if n := outboxCount(t, e.st, bad...); n != 0 || len(e.wa.sent()) != 0 {
			t.Fatalf("%d outbox items, %d sends for refused keys", n, len(e.wa.sent()))
		}
		if ds := docs(t, e.st); len(ds) != 0 {
			t.Fatalf("documents for refused keys: %+v", ds)
		}
	})
}

// Item 2: a keyless send gets a key no caller can predict or pre-claim. The
// daemon's request ids (a per-process prefix and a counter, shown on every
// answer) were the key: a caller that claimed the next id made a later
// keyless send a "duplicate" that was never sent.
func TestSendGeneratedKeyNotPreclaimed(t *testing.T) {
	e := newEnv(t)
	e.wa.addAccount(sendAcc, "+40722000111", daemon.StateConnected)
	// The daemon's generated ids are 12 hex characters of prefix and a hex
	// counter; claim the next few.
	probe := e.do("GET", "/api/whatsapp/accounts", e.admin, nil).str("requestId")
	n, err := strconv.ParseUint(probe[12:], 16, 64)
	if err != nil {
		t.Fatalf("request id %q: %v", probe, err)
	}
	for i := uint64(1); i <= 8; i++ {
		id := probe[:12] + strconv.FormatUint(n+i, 16)
		b := map[string]any{"accountId": sendAcc, "to": peerJID, "message": "claim " + id}
		if r := e.do("POST", peerPath, e.admin, b, "X-Request-ID", id); r.code != 200 {
			t.Fatalf("claim %s: %d %s", id, r.code, r.raw)
		}
	}
	before := len(e.wa.sent())
	r := e.do("POST", peerPath, e.admin, map[string]any{"accountId": sendAcc, "to": peerJID, "message": "keyless"})
	key := r.str("idempotencyKey")
	if r.code != 200 || r.body["duplicate"] == true || r.str("status") != "sent" || len(e.wa.sent()) != before+1 {
		t.Fatalf("keyless send after the claims: %d %s", r.code, r.raw)
	}
	if !strings.HasPrefix(key, "gen_") || len(key) < 4+32 || key == r.str("requestId") {
		t.Fatalf("generated key %q (request id %q)", key, r.str("requestId"))
	}
	if r2 := e.do("POST", peerPath, e.admin, map[string]any{"accountId": sendAcc, "to": peerJID, "message": "keyless"}); r2.str("idempotencyKey") == key {
		t.Fatal("two keyless sends share a key")
	}
}

// Item 3: a key reused for another request (other account, recipient or
// text) is a 409 and nothing is sent or queued; it used to answer 200
// duplicate:true and drop the second request.
func TestSendKeyReusedForAnotherRequest(t *testing.T) {
	bothStores(t, func(t *testing.T, e *env) {
		const other = "account_prod_00000000000000000000000000000002"
		e.wa.addAccount(sendAcc, "+40722000111", daemon.StateConnected)
		e.wa.addAccount(other, "+40722000112", daemon.StateConnected)
		e.wa.addAccount("account_prod_off", "+40722000113", daemon.StateReconnecting)
		send := func(acc, to, text, key string) resp {
			return e.do("POST", peerPath, e.svc, map[string]any{"accountId": acc, "to": to, "message": text}, "X-Request-ID", key)
		}
		conflict := func(what string, r resp) {
			t.Helper()
			if r.code != 409 || r.str("error") != "request_id_reused" {
				t.Errorf("%s: %d %s", what, r.code, r.raw)
			}
		}
		// Sent directly.
		if r := send(sendAcc, peerJID, "one", "k-direct"); r.code != 200 || r.str("status") != "sent" {
			t.Fatalf("first send %d %s", r.code, r.raw)
		}
		conflict("other recipient", send(sendAcc, "40722999777", "one", "k-direct"))
		conflict("other text", send(sendAcc, peerJID, "two", "k-direct"))
		conflict("other account", send(other, peerJID, "one", "k-direct"))
		if r := send(sendAcc, "+40 722 999 888", "one", "k-direct"); r.code != 200 || r.body["duplicate"] != true {
			t.Fatalf("the same request again (recipient spelt differently): %d %s", r.code, r.raw)
		}
		// Queued for an account that is not connected.
		if r := send("account_prod_off", peerJID, "later", "k-queued"); r.code != 200 || r.body["queued"] != true {
			t.Fatalf("queued send %d %s", r.code, r.raw)
		}
		conflict("queued, other recipient", send("account_prod_off", "40722999777", "later", "k-queued"))
		conflict("queued, other text", send("account_prod_off", peerJID, "sooner", "k-queued"))
		conflict("queued, other account", send(sendAcc, peerJID, "later", "k-queued"))
		if r := send("account_prod_off", peerJID, "later", "k-queued"); r.code != 200 || r.body["duplicate"] != true {
			t.Fatalf("queued repeat %d %s", r.code, r.raw)
		}
		if n := len(e.wa.sent()); n != 1 {
			t.Fatalf("%d WhatsApp sends, want 1: %+v", n, e.wa.sent())
		}
		if ds := docs(t, e.st); len(ds) != 1 {
			t.Fatalf("documents in the first thread: %+v", ds)
		}
	})
}

// Item 9: ids in paths are single document ids; an encoded '/' used to
// reach sub-documents (a message read as a thread).
func TestPathIDsAreOneDocumentID(t *testing.T) {
	bothStores(t, func(t *testing.T, e *env) {
		e.wa.addAccount(sendAcc, "+40722000111", daemon.StateConnected)
		m, err := msgbuild.BuildOutbound(msgbuild.Outbound{AccountID: sendAcc, ToJID: peerJID, RequestID: "doc-1",
			Body: "secret text", Status: "sent", WAMessageID: "3EB0AAAAAAAAAAAAAAAAAA", At: e.clk.Now()})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.st.RecordMessage(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		long := strings.Repeat("A", 5000)
		thread := func(tid string) string {
			return "/api/whatsapp/messages/" + sendAcc + "/" + tid
		}
		for _, c := range []struct{ method, path, code string }{
			{"GET", thread(url.PathEscape(sendThread + "/messages/doc-1")), "invalid_thread"},
			{"GET", thread(url.PathEscape(sendThread + "/messages/doc-1/x/y")), "invalid_thread"},
			{"GET", thread(sendAcc + "__" + long), "invalid_thread"},
			{"GET", thread(url.PathEscape("__" + sendAcc + "__")), "invalid_thread"},
			{"GET", "/api/whatsapp/threads/" + url.PathEscape(sendAcc+"/x"), "invalid_account"},
			{"GET", "/api/whatsapp/inbox/" + long, "invalid_account"},
			{"GET", "/api/whatsapp/inbox/__x__", "invalid_account"},
			{"GET", "/api/whatsapp/messages/" + url.PathEscape("a/b") + "/" + url.PathEscape("a/b__c"), "invalid_account"},
			{"DELETE", "/api/whatsapp/accounts/" + long, "invalid_account"},
			{"POST", "/api/whatsapp/accounts/" + url.PathEscape("x/y") + "/reset", "invalid_account"},
			{"PATCH", "/api/whatsapp/accounts/" + long + "/name", "invalid_account"},
			{"POST", "/api/whatsapp/disconnect/__x__", "invalid_account"},
			{"POST", "/api/whatsapp/regenerate-qr/" + long, "invalid_account"},
			{"GET", "/api/whatsapp/qr/" + url.PathEscape("a\x00b"), "invalid_account"},
		} {
			var body any
			if c.method == "PATCH" {
				body = map[string]any{"name": "n"}
			}
			r := e.do(c.method, c.path, e.admin, body)
			if r.code != 400 || r.str("error") != c.code {
				t.Errorf("%s %.100s: %d %.200s", c.method, c.path, r.code, r.raw)
			}
			if strings.Contains(string(r.raw), "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA") || strings.Contains(string(r.raw), "secret text") {
				t.Errorf("%s %.100s echoed the id or leaked: %.300s", c.method, c.path, r.raw)
			}
		}
		// The send route's accountId too.
		r := e.do("POST", peerPath, e.admin, map[string]any{"accountId": long, "to": peerJID, "message": "x"})
		if r.code != 400 || len(r.raw) > 1000 {
			t.Errorf("send with a 5,000-character accountId: %d %.300s", r.code, r.raw)
		}
		// A real thread still reads.
		if r := e.do("GET", thread(sendThread), e.admin, nil); r.code != 200 {
			t.Fatalf("valid thread: %d %s", r.code, r.raw)
		}
		if tid := dedupe.ThreadID(sendAcc, peerJID); tid != sendThread {
			t.Fatal(tid)
		}
	})
}

// Item 11: a null body, bidi controls in names, long ids echoed.
func TestLooseEdges(t *testing.T) {
	e := newEnv(t)
	e.wa.addAccount(sendAcc, "+40722000111", daemon.StateConnected)
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/api/whatsapp/add-account", "null"},
		{"POST", "/api/whatsapp/add-account", " null "},
		{"POST", "/api/whatsapp/add-account", "[]"},
		{"POST", "/api/whatsapp/add-account", `"x"`},
		{"PATCH", "/api/whatsapp/accounts/" + sendAcc + "/name", "null"},
		{"POST", peerPath, "null"},
	} {
		r := e.do(c.method, c.path, e.admin, c.body)
		if r.code != 400 {
			t.Errorf("%s %s %q: %d %s", c.method, c.path, c.body, r.code, r.raw)
		}
	}
	for _, name := range []string{"abc\u202Etxt.exe", "a\u2066b", "a\u200Fb", "a\u061Cb", "a\u202Ab"} {
		if r := e.do("POST", "/api/whatsapp/add-account", e.admin, map[string]any{"name": name}); r.code != 400 || r.str("error") != "invalid_name" {
			t.Errorf("add-account name %q: %d %s", name, r.code, r.raw)
		}
		if r := e.do("PATCH", "/api/whatsapp/accounts/"+sendAcc+"/name", e.admin, map[string]any{"name": name}); r.code != 400 || r.str("error") != "invalid_name" {
			t.Errorf("rename to %q: %d %s", name, r.code, r.raw)
		}
	}
	if len(e.wa.added) != 0 {
		t.Fatalf("accounts created: %+v", e.wa.added)
	}
	// Names people use still pass: accents, emoji with joiners, RTL text.
	for _, name := range []string{"Café Ünïcode", "👨‍👩‍👧 family", "שלום עולם"} {
		if r := e.do("PATCH", "/api/whatsapp/accounts/"+sendAcc+"/name", e.admin, map[string]any{"name": name}); r.code != 200 {
			t.Errorf("rename to %q: %d %s", name, r.code, r.raw)
		}
	}
	// A threadId in the body that is not this recipient's is not echoed
	// when it is long.
	long := strings.Repeat("B", 5000)
	r := e.do("POST", peerPath, e.admin, map[string]any{"accountId": sendAcc, "to": peerJID, "message": "x", "threadId": long})
	if r.code != 400 || strings.Contains(string(r.raw), long[:200]) {
		t.Errorf("threadId echoed: %d %.300s", r.code, r.raw)
	}
}
