package api

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/pkg/daemon"
	"github.com/wactl/wactl/pkg/dedupe"
	"github.com/wactl/wactl/pkg/store"
	"github.com/wactl/wactl/pkg/store/firestore"
)

// Issue 22 item 3: the app asks limit=500&orderBy=lastMessageAt and does
// not follow nextCursor: 230 threads, and 280 messages of one thread, come
// back whole on one page; the inbox's 509 messages come as 500 and a
// cursor to the other 9.
func testAppLimit500(t *testing.T, e *env) {
	e.wa.addAccount(readAcc, "+40720000000", daemon.StateConnected)
	base := e.clk.Now().Add(-time.Hour)
	seed(t, e.st, 230, base) // peer 0 is the self-chat: 229 threads listed
	batch := make([]store.Message, 0, 280)
	for i := 0; i < 280; i++ {
		batch = append(batch, inbound(readAcc, 9999, fmt.Sprintf("3EB0ONE%06d", i), base.Add(time.Duration(i)*time.Millisecond), "x"))
	}
	if _, err := e.st.RecordHistory(context.Background(), readAcc, batch); err != nil {
		t.Fatal(err)
	}
	one := dedupe.ThreadID(readAcc, "40720009999@s.whatsapp.net")
	page := func(path, key string, want int, more bool) any {
		t.Helper()
		r := e.do("GET", path, e.user, nil)
		items, _ := r.body[key].([]any)
		if r.code != 200 || len(items) != want || r.body["count"] != float64(want) || (r.body["nextCursor"] != nil) != more {
			t.Fatalf("%s: %d, %d %s (want %d), nextCursor %v", path, r.code, len(items), key, want, r.body["nextCursor"])
		}
		return r.body["nextCursor"]
	}
	page("/api/whatsapp/threads/"+readAcc+"?limit=500&orderBy=lastMessageAt", "threads", 230, false)
	page("/api/whatsapp/messages/"+readAcc+"/"+one+"?limit=500", "messages", 280, false)
	// Larger listings: pages of 500 (also when more is asked) and a cursor.
	next := page("/api/whatsapp/inbox/"+readAcc+"?limit=100000", "messages", 500, true)
	page("/api/whatsapp/inbox/"+readAcc+"?limit=500&cursor="+url.QueryEscape(next.(string)), "messages", 9, false)
}

func TestAppLimit500Embedded(t *testing.T) { testAppLimit500(t, newEnv(t)) }

// On Firestore: 230 thread documents (and a message in each), written as
// the old service left them, come back in one page each. Written in bulk:
// recording them one by one costs the loaded emulator most of a minute.
func TestAppLimit500Firestore(t *testing.T) {
	client, _ := fsemu.NewClient(t)
	clk := newClock()
	st, err := firestore.Open(context.Background(), firestore.Options{Client: client, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	e := newEnvWithStore(t, st, clk)
	e.wa.addAccount(readAcc, "+40720000000", daemon.StateConnected)
	bw := client.BulkWriter(context.Background())
	base := clk.Now().Add(-time.Hour)
	for i := 1; i <= 230; i++ {
		jid := fmt.Sprintf("4072%07d@s.whatsapp.net", i)
		tid := dedupe.ThreadID(readAcc, jid)
		at := base.Add(time.Duration(i) * time.Second)
		thread := client.Collection("threads").Doc(tid)
		if _, err := bw.Set(thread, map[string]any{"accountId": readAcc, "clientJid": jid, "canonicalThreadId": tid,
			"peerType": "user", "isGroup": false, "lastMessageAt": at, "lastMessageAtMs": at.UnixMilli(),
			"lastMessageText": "hi", "lastMessagePreview": "hi", "lastMessageDirection": "inbound", "updatedAt": at}); err != nil {
			t.Fatal(err)
		}
		if _, err := bw.Set(thread.Collection("messages").Doc(fmt.Sprintf("m%06d", i)), map[string]any{"accountId": readAcc,
			"clientJid": jid, "direction": "inbound", "body": "hi", "status": "delivered", "messageType": "text",
			"tsClient": at, "tsClientMs": at.UnixMilli(), "createdAt": at, "source": "realtime"}); err != nil {
			t.Fatal(err)
		}
	}
	bw.End()
	for _, c := range [][2]string{
		{"/api/whatsapp/threads/" + readAcc + "?limit=500&orderBy=lastMessageAt", "threads"},
		{"/api/whatsapp/inbox/" + readAcc + "?limit=500", "messages"},
	} {
		r := e.do("GET", c[0], e.user, nil)
		items, _ := r.body[c[1]].([]any)
		if r.code != 200 || len(items) != 230 || r.body["nextCursor"] != nil {
			t.Fatalf("%s: %d, %d %s, nextCursor %v", c[0], r.code, len(items), c[1], r.body["nextCursor"])
		}
	}
}

// Issue 22 item 4: re-adding a phone that has a live account answers 200
// with the account (the old service restarted pairing); pairing restarts
// only when the account is not connected.
func TestReAddLiveAccount(t *testing.T) {
	e := newEnv(t)
	phone := "+40722000111"
	id := dedupe.AccountIDFromCanonical("prod", phone)
	add := func() resp {
		t.Helper()
		return e.do("POST", "/api/whatsapp/add-account", e.admin, map[string]any{"name": "Sales", "phone": phone})
	}
	if r := add(); r.code != 200 {
		t.Fatalf("add: %d %s", r.code, r.raw)
	}
	calls := func() string {
		e.wa.mu.Lock()
		defer e.wa.mu.Unlock()
		return strings.Join(e.wa.calls, ",")
	}
	// Pairing runs (a QR shows): the same account back, nothing restarted.
	e.wa.setState(id, daemon.StateQRReady)
	e.wa.setPairing(id, PairingState{QR: "2@x", IssuedAt: e.clk.Now()})
	if r := add(); r.code != 200 || r.body["account"].(map[string]any)["id"] != id || calls() != "" {
		t.Fatalf("re-add while pairing: %d %s, calls %q", r.code, r.raw, calls())
	}
	// The pairing ended without a scan: re-adding pairs again.
	e.wa.setState(id, daemon.StateNeedsQR)
	e.wa.mu.Lock()
	delete(e.wa.pairing, id)
	e.wa.mu.Unlock()
	r := add()
	acc, _ := r.body["account"].(map[string]any)
	if r.code != 200 || r.body["success"] != true || acc["id"] != id || acc["phone"] != phone || acc["name"] == "" {
		t.Fatalf("re-add of a pairing account: %d %s", r.code, r.raw)
	}
	if calls() != "regen:"+id {
		t.Fatalf("re-add of an account that is not connected must restart pairing; daemon calls %q", calls())
	}
	e.wa.setState(id, daemon.StateConnected)
	r = add()
	acc, _ = r.body["account"].(map[string]any)
	if r.code != 200 || acc["status"] != "connected" || acc["id"] != id {
		t.Fatalf("re-add of a connected account: %d %s", r.code, r.raw)
	}
	e.wa.mu.Lock()
	added := len(e.wa.added)
	e.wa.mu.Unlock()
	if calls() != "regen:"+id || added != 1 {
		t.Fatalf("re-add of a connected account touched it: calls %q, %d adds", calls(), added)
	}
}

// The PASSIVE 503 carries the old service's message, which the app shows.
func TestPassiveMessage(t *testing.T) {
	e := newEnv(t)
	e.wa.addAccount("acc1", "+40722000111", daemon.StateConnected)
	e.wa.setActive(false)
	r := e.do("POST", "/api/whatsapp/regenerate-qr/acc1", e.admin, nil)
	if r.code != 503 || r.str("error") != "instance_passive" || r.str("message") != PassiveMessage {
		t.Fatalf("%d %s", r.code, r.raw)
	}
}

// regenerate-qr while a pairing runs (no fresh QR to hand back) is the old
// service's 202 already_in_progress, without a second pairing.
func TestRegenerateQRWhilePairing(t *testing.T) {
	e := newEnv(t)
	e.wa.addAccount("acc1", "+40722000111", daemon.StateQRReady)
	e.wa.addAccount("acc2", "+40722000222", daemon.StateConnecting)
	for _, c := range []struct {
		id string
		p  *PairingState
	}{
		{"acc1", &PairingState{QR: "2@old", IssuedAt: e.clk.Now().Add(-2 * time.Minute)}},
		{"acc1", &PairingState{PairingCode: "ABCD-EFGH", IssuedAt: e.clk.Now()}},
		{"acc2", nil}, // scanned: the login is connecting
	} {
		if c.p != nil {
			e.wa.setPairing(c.id, *c.p)
		}
		r := e.do("POST", "/api/whatsapp/regenerate-qr/"+c.id, e.admin, nil)
		if r.code != 202 || r.str("status") != "already_in_progress" || r.body["success"] != true || r.str("message") == "" {
			t.Errorf("%s %+v: %d %s", c.id, c.p, r.code, r.raw)
		}
	}
	if len(e.wa.calls) != 0 {
		t.Fatalf("a second pairing was started: %v", e.wa.calls)
	}
}

// threads and inbox of an account this instance does not know: 200 and an
// empty list, as the old service answered.
func TestReadsUnknownAccountEmpty(t *testing.T) {
	e := newEnv(t)
	for _, c := range [][2]string{{"threads", "threads"}, {"inbox", "messages"}} {
		r := e.do("GET", "/api/whatsapp/"+c[0]+"/account_prod_00000000000000000000000000000000?limit=500", e.user, nil)
		items, ok := r.body[c[1]].([]any)
		if r.code != 200 || !ok || len(items) != 0 || r.body["count"] != 0.0 {
			t.Errorf("%s: %d %s", c[0], r.code, r.raw)
		}
	}
}
