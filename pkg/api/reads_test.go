package api

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/wactl/wactl/pkg/daemon"
	"github.com/wactl/wactl/pkg/dedupe"
	"github.com/wactl/wactl/pkg/store"
	"github.com/wactl/wactl/pkg/store/sqlite"
)

const readAcc = "account_prod_1111111111111111111111111111aaaa"

func inbound(acc string, peer int, waID string, at time.Time, body string) store.Message {
	jid := fmt.Sprintf("4072%07d@s.whatsapp.net", peer)
	return store.Message{
		AccountID: acc, ThreadID: dedupe.ThreadID(acc, jid), DocID: dedupe.MessageDocID(acc, waID),
		ClientJID: jid, ClientJIDRaw: jid, RawJID: jid, ResolvedJID: jid, NormalizedPhone: dedupe.NormalizedPhone(jid),
		PeerType: "user", SenderJID: jid, SenderName: fmt.Sprintf("Peer %d", peer), Direction: "inbound", Body: body,
		WAMessageID: waID, WAMessageIDRaw: waID, Status: "delivered", MessageType: "text", TsClient: at, Source: "realtime",
		StableKeyHash: dedupe.StableKeyHash(dedupe.StableKey(acc, jid, waID, false, "")), DisplayName: fmt.Sprintf("Peer %d", peer),
	}
}

// seed writes one message into each of n threads (thread i newest at i).
func seed(t testing.TB, st store.Store, n int, base time.Time) {
	t.Helper()
	batch := make([]store.Message, 0, n)
	for i := 0; i < n; i++ {
		batch = append(batch, inbound(readAcc, i, fmt.Sprintf("3EB0SEED%06d", i), base.Add(time.Duration(i)*time.Second), fmt.Sprintf("msg %d", i)))
	}
	if _, err := st.RecordHistory(context.Background(), readAcc, batch); err != nil {
		t.Fatal(err)
	}
}

func TestReads(t *testing.T) {
	e := newEnv(t)
	// The account's own number is peer 0: its self-chat is hidden.
	e.wa.addAccount(readAcc, "+40720000000", daemon.StateConnected)
	base := e.clk.Now().Add(-time.Hour)
	seed(t, e.st, 300, base)
	// The newest message of all is a note to self.
	if _, err := e.st.RecordMessage(context.Background(), inbound(readAcc, 0, "3EB0SELF", base.Add(time.Hour), "note to self")); err != nil {
		t.Fatal(err)
	}

	r := e.do("GET", "/api/whatsapp/threads/"+readAcc+"?limit=5&orderBy=lastMessageAt", e.user, nil)
	ths, _ := r.body["threads"].([]any)
	if r.code != 200 || len(ths) != 5 || r.body["count"] != 5.0 {
		t.Fatalf("%d %s", r.code, r.raw)
	}
	if first := ths[0].(map[string]any); first["id"] != dedupe.ThreadID(readAcc, "40720000299@s.whatsapp.net") || first["lastMessageText"] != "msg 299" {
		t.Fatalf("newest thread first: %v", first)
	}
	// 299 threads fit in one page (cap 500, parity_answers_test.go).
	r = e.do("GET", "/api/whatsapp/threads/"+readAcc+"?limit=100000", e.user, nil)
	if n := r.body["count"]; n != float64(min(299, maxLimit)) || r.body["nextCursor"] != nil {
		t.Fatalf("limit above the cap: %v, nextCursor %v", n, r.body["nextCursor"])
	}
	r = e.do("GET", "/api/whatsapp/threads/"+readAcc+"?limit=1000", e.user, nil)
	for _, x := range r.body["threads"].([]any) {
		if x.(map[string]any)["clientJid"] == "40720000000@s.whatsapp.net" {
			t.Fatal("self-chat listed")
		}
	}
	for _, q := range []string{"?limit=0", "?limit=x", "?orderBy=name"} {
		if r := e.do("GET", "/api/whatsapp/threads/"+readAcc+q, e.user, nil); r.code != 400 {
			t.Errorf("%s: %d", q, r.code)
		}
	}

	r = e.do("GET", "/api/whatsapp/inbox/"+readAcc+"?limit=3", e.user, nil)
	ms, _ := r.body["messages"].([]any)
	if r.code != 200 || len(ms) != 3 {
		t.Fatalf("inbox %d %s", r.code, r.raw)
	}
	m0 := ms[0].(map[string]any)
	if m0["body"] != "msg 299" || m0["displayName"] != "Peer 299" || m0["threadId"] == "" || m0["messageId"] == "" || m0["tsClientMs"] == nil {
		t.Fatalf("inbox newest first: %v", m0)
	}

	tid := dedupe.ThreadID(readAcc, "40720000007@s.whatsapp.net")
	r = e.do("GET", "/api/whatsapp/messages/"+readAcc+"/"+tid, e.user, nil)
	if r.code != 200 || r.body["count"] != 1.0 || r.body["thread"].(map[string]any)["id"] != tid {
		t.Fatalf("messages %d %s", r.code, r.raw)
	}
	if r := e.do("GET", "/api/whatsapp/messages/"+readAcc+"/account_prod_other__40720000007@s.whatsapp.net", e.user, nil); r.code != 400 {
		t.Fatalf("foreign thread: %d", r.code)
	}
	if r := e.do("GET", "/api/whatsapp/messages/"+readAcc+"/"+readAcc+"__", e.user, nil); r.code != 400 {
		t.Fatalf("empty jid: %d", r.code)
	}
	if r := e.do("GET", "/api/whatsapp/messages/"+readAcc+"/"+readAcc+"__1@s.whatsapp.net", e.user, nil); r.code != 404 {
		t.Fatalf("unknown thread: %d", r.code)
	}
	// An unknown account has an empty inbox, as the old service answered.
	if r := e.do("GET", "/api/whatsapp/inbox/account_prod_unknown", e.user, nil); r.code != 200 || r.body["count"] != 0.0 {
		t.Fatalf("unknown account: %d %s", r.code, r.raw)
	}
	// Reads work on a PASSIVE instance and are not rate limited.
	e.wa.setActive(false)
	if r := e.do("GET", "/api/whatsapp/inbox/"+readAcc, e.user, nil); r.code != 200 {
		t.Fatalf("passive read: %d", r.code)
	}
}

// TestReadsPaging follows nextCursor through the three read routes while
// newer messages arrive: every item once, in order, self-chat excluded,
// nextCursor null on the last page.
func TestReadsPaging(t *testing.T) {
	e := newEnv(t)
	e.wa.addAccount(readAcc, "+40720000000", daemon.StateConnected)
	base := e.clk.Now().Add(-time.Hour)
	seed(t, e.st, 40, base)
	// Notes to self in the middle of the listing, and more messages in
	// thread 7 (some at the same instant).
	for i := 0; i < 5; i++ {
		mustRecord(t, e.st, inbound(readAcc, 0, fmt.Sprintf("3EB0SELF%d", i), base.Add(time.Duration(20+i)*time.Second), "self"))
		mustRecord(t, e.st, inbound(readAcc, 7, fmt.Sprintf("3EB0T7%d", i), base.Add(time.Duration(i/2)*time.Second), "t7"))
	}
	newer := 0
	arrive := func() {
		newer++
		mustRecord(t, e.st, inbound(readAcc, 500+newer, fmt.Sprintf("3EB0NEW%d", newer), base.Add(time.Hour+time.Duration(newer)*time.Second), "newer"))
	}
	follow := func(path, key string, limit int) []string {
		t.Helper()
		var got []string
		cursor := ""
		for page := 0; ; page++ {
			q := fmt.Sprintf("%s?limit=%d", path, limit)
			if cursor != "" {
				q += "&cursor=" + url.QueryEscape(cursor)
			}
			r := e.do("GET", q, e.user, nil)
			items, _ := r.body[key].([]any)
			if r.code != 200 || len(items) > limit {
				t.Fatalf("%s page %d: %d %s", path, page, r.code, r.raw)
			}
			for _, x := range items {
				m := x.(map[string]any)
				if m["clientJid"] == "40720000000@s.whatsapp.net" {
					t.Fatalf("%s: self-chat listed", path)
				}
				got = append(got, m["id"].(string))
			}
			nc, present := r.body["nextCursor"]
			if !present {
				t.Fatalf("%s: no nextCursor key: %s", path, r.raw)
			}
			if nc == nil {
				return got
			}
			if len(items) != limit {
				t.Fatalf("%s page %d: %d items and a nextCursor", path, page, len(items))
			}
			cursor = nc.(string)
			arrive()
		}
	}
	once := func(what string, got []string, want int) {
		t.Helper()
		seen := map[string]bool{}
		for _, id := range got {
			if seen[id] {
				t.Fatalf("%s: %s twice", what, id)
			}
			seen[id] = true
		}
		if len(got) != want {
			t.Fatalf("%s: %d items, want %d", what, len(got), want)
		}
	}
	all := func(path, key string) []string {
		r := e.do("GET", path+"?limit=200", e.user, nil)
		var out []string
		for _, x := range r.body[key].([]any) {
			out = append(out, x.(map[string]any)["id"].(string))
		}
		return out
	}

	wantThreads := all("/api/whatsapp/threads/"+readAcc, "threads")
	once("threads", wantThreads, 39)
	// Pages that are not filled by the listing's end, and pages that are
	// (the last full page must still know whether more exist). Messages
	// that arrived before a pass head its listing; those arriving during
	// it never shift a later page.
	for _, limit := range []int{7, 3, 13, 39} {
		before := newer
		got := follow("/api/whatsapp/threads/"+readAcc, "threads", limit)
		if len(got) != before+39 || fmt.Sprint(got[before:]) != fmt.Sprint(wantThreads) {
			t.Fatalf("threads limit %d (%d newer)\n got %v\nwant %v", limit, before, got, wantThreads)
		}
		once("threads", got, before+39)
	}
	wantInbox := all("/api/whatsapp/inbox/"+readAcc, "messages")[newer:]
	once("inbox", wantInbox, 44)
	for _, limit := range []int{4, 11, 44} {
		before := newer
		got := follow("/api/whatsapp/inbox/"+readAcc, "messages", limit)
		if len(got) != before+44 || fmt.Sprint(got[before:]) != fmt.Sprint(wantInbox) {
			t.Fatalf("inbox limit %d (%d newer)\n got %v\nwant %v", limit, before, got, wantInbox)
		}
		once("inbox", got, before+44)
	}
	t7 := dedupe.ThreadID(readAcc, "40720000007@s.whatsapp.net")
	wantT7 := all("/api/whatsapp/messages/"+readAcc+"/"+t7, "messages")
	once("thread 7", wantT7, 6)
	for _, limit := range []int{1, 2, 4} {
		if got := follow("/api/whatsapp/messages/"+readAcc+"/"+t7, "messages", limit); fmt.Sprint(got) != fmt.Sprint(wantT7) {
			t.Fatalf("thread 7 limit %d\n got %v\nwant %v", limit, got, wantT7)
		}
	}

	for _, bad := range []string{"garbage", "bm9wZQ", "%%%"} {
		for _, path := range []string{"/api/whatsapp/threads/" + readAcc, "/api/whatsapp/inbox/" + readAcc, "/api/whatsapp/messages/" + readAcc + "/" + t7} {
			r := e.do("GET", path+"?cursor="+url.QueryEscape(bad), e.user, nil)
			if r.code != 400 || r.str("error") != "invalid_cursor" {
				t.Fatalf("%s with cursor %q: %d %s", path, bad, r.code, r.raw)
			}
		}
	}
}

func mustRecord(t testing.TB, st store.Store, m store.Message) {
	t.Helper()
	if _, err := st.RecordMessage(context.Background(), m); err != nil {
		t.Fatal(err)
	}
}

// benchEnv is an API over a SQLite store holding 1,000 threads.
func benchEnv(b *testing.B) (*env, *sqlite.Store) {
	e := newEnv(b)
	e.wa.addAccount(readAcc, "+40799999999", daemon.StateConnected)
	seed(b, e.st, 1000, time.Now().Add(-time.Hour))
	return e, e.st.(*sqlite.Store)
}

// BenchmarkInbox is the inbox route (one indexed query) over 1,000 threads.
func BenchmarkInbox(b *testing.B) {
	e, _ := benchEnv(b)
	h := http.NewServeMux()
	e.api.Register(h)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req := httptest.NewRequest("GET", "/api/whatsapp/inbox/"+readAcc+"?limit=50", nil)
		req.Header.Set("Authorization", "Bearer "+e.user)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatal(rec.Code)
		}
	}
}

// BenchmarkInboxN1Baseline is what the old service did: read every thread,
// then the newest messages of each, then sort — the baseline Inbox beats.
func BenchmarkInboxN1Baseline(b *testing.B) {
	_, st := benchEnv(b)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ths, err := st.ListThreads(ctx, readAcc, store.Page{Limit: 100000})
		if err != nil {
			b.Fatal(err)
		}
		var all []store.Message
		for _, t := range ths {
			ms, err := st.ListMessages(ctx, t.ID, store.Page{Limit: 50})
			if err != nil {
				b.Fatal(err)
			}
			all = append(all, ms...)
		}
		if len(all) < 50 {
			b.Fatal(len(all))
		}
	}
}

// BenchmarkAccountsPoll is the 2 s poll of the app.
func BenchmarkAccountsPoll(b *testing.B) {
	e := newEnv(b)
	for i := 0; i < 30; i++ {
		e.wa.addAccount(fmt.Sprintf("acc%02d", i), "+4072200011"+fmt.Sprint(i%10), daemon.StateConnected)
	}
	e.wa.setPairing("acc00", PairingState{QR: "2@bench", IssuedAt: time.Now()})
	h := http.NewServeMux()
	e.api.Register(h)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req := httptest.NewRequest("GET", "/api/whatsapp/accounts", nil)
		req.Header.Set("Authorization", "Bearer "+e.admin)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatal(rec.Code)
		}
	}
}
