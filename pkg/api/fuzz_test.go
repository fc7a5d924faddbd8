package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wactl/wactl/pkg/daemon"
	"github.com/wactl/wactl/pkg/dedupe"
	"github.com/wactl/wactl/pkg/store/msgbuild"
)

func FuzzParseRecipient(f *testing.F) {
	for _, s := range []string{"40722999888", "+40 722 999 888", "0722999888", "40722999888@c.us", "40722999888:3@s.whatsapp.net",
		"120363025246125486@g.us", "123456789-987654@g.us", "123456789012345@lid", "x@broadcast", "@", "+", "a@b@c", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		j, err := ParseRecipient(s, "40")
		if err != nil {
			return
		}
		str := j.String()
		// Accepted recipients are canonical fixed points of one of the
		// three servers, and survive a second parse unchanged.
		if dedupe.CanonicalJID(str) != str {
			t.Fatalf("%q → %q not canonical", s, str)
		}
		if j.Server != "s.whatsapp.net" && j.Server != "g.us" && j.Server != "lid" {
			t.Fatalf("%q → server %q", s, j.Server)
		}
		again, err := ParseRecipient(str, "40")
		if err != nil || again != j {
			t.Fatalf("%q → %q does not reparse: %v %v", s, str, again, err)
		}
	})
}

func FuzzValidatePhone(f *testing.F) {
	for _, s := range []string{"+40722000111", "0722 000 111", "(0722) 000-111", "++40", "40722000111x", "0", "+1234567890123456"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ValidatePhone(s, "40")
		if err != nil {
			return
		}
		if !strings.HasPrefix(p, "+") || !allDigits(p[1:]) || len(p) < 9 || len(p) > 16 {
			t.Fatalf("%q → %q", s, p)
		}
		if again, err := ValidatePhone(p, "40"); err != nil || again != p {
			t.Fatalf("%q → %q not a fixed point: %q %v", s, p, again, err)
		}
	})
}

func FuzzSendBody(f *testing.F) {
	f.Add(`{"accountId":"account_prod_x","to":"40722999888","message":"hi"}`, "req-1")
	f.Add(`{"accountId":"a","toJid":"1@g.us","text":"x","threadId":"a__1@g.us","clientMessageId":"c"}`, "")
	f.Add(`{"accountId":"a","to":"x","extra":true}`, "../..")
	f.Add(`{}{}`, "__x__")
	f.Fuzz(func(t *testing.T, body, header string) {
		var b sendBody
		if err := decodeJSON(strings.NewReader(body), &b); err != nil {
			return
		}
		p, err := parseSend(b, header, "fallback-id", "40")
		if err != nil {
			return
		}
		if !docIDSafe(p.Key) && p.Key != "fallback-id" {
			t.Fatalf("unsafe key %q", p.Key)
		}
		if !strings.HasPrefix(p.ThreadID, p.AccountID+"__") || strings.TrimSpace(p.Body) == "" || p.To.IsEmpty() {
			t.Fatalf("accepted %+v", p)
		}
		if len(DeriveMessageID(p.AccountID, p.Key)) != 22 {
			t.Fatal("id length")
		}
	})
}

// FuzzVerifyToken: no input is accepted without the key's signature, and
// none panics.
func FuzzVerifyToken(f *testing.F) {
	ks := newKeyServer(f)
	now := time.Now()
	good := sign(f, ks.key, ks.kid, claimsFor("u", now))
	f.Add(good)
	f.Add("a.b.c")
	f.Add(good[:len(good)-3])
	f.Add(strings.Replace(good, ".", "..", 1))
	v := &verifier{project: testProject, now: func() time.Time { return now }, skew: time.Minute,
		keys: &keyCache{url: ks.srv.URL, client: ks.srv.Client(), now: func() time.Time { return now }}}
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := v.verify(context.Background(), tok)
		if err == nil && tok != good {
			// Base64 has several encodings of one byte string only in
			// padding bits; anything else accepted is a forgery.
			if c.Sub != "u" {
				t.Fatalf("accepted %q as %q", tok, c.Sub)
			}
		}
	})
}

// FuzzAPI drives the real router (daemon middleware, authentication, every
// route) on the embedded store with fuzzed method, path ids, token,
// X-Request-ID and body. The seeds hold every attack of issue 16 on the
// API (docs/security.md). Invariants: no 500 and no panic; nothing but 401
// or 429 without a valid credential; no secret and no long id echoed; a
// send answered 200 has a key that is one document id and, for a caller's
// key, the same request every time; a thread read returns that thread.
func FuzzAPI(f *testing.F) {
	e := newEnv(f, func(o *Options, d *Deps) { o.RatePerMinute, o.AuthFailuresPerMinute = -1, -1 })
	e.wa.addAccount(sendAcc, "+40722000111", daemon.StateConnected)
	e.wa.addAccount("account_prod_off", "+40722000113", daemon.StateReconnecting)
	m, err := msgbuild.BuildOutbound(msgbuild.Outbound{AccountID: sendAcc, ToJID: peerJID, RequestID: "doc-1",
		Body: "stored", Status: "sent", WAMessageID: "3EB0AAAAAAAAAAAAAAAAAA", At: e.clk.Now()})
	if err != nil {
		f.Fatal(err)
	}
	if _, err := e.st.RecordMessage(context.Background(), m); err != nil {
		f.Fatal(err)
	}
	now := e.clk.Now()
	anon := claimsFor("anon-uid", now)
	anon["firebase"] = map[string]any{"sign_in_provider": "anonymous"}
	delete(anon, "email")
	unverified := claimsFor("unverified-uid", now)
	unverified["email_verified"] = false
	tokens := []string{"", e.admin, e.user, e.svc, "garbage.token.x", sign(f, e.ks.key, e.ks.kid, anon), sign(f, e.ks.key, e.ks.kid, unverified)}
	valid := map[int]bool{1: true, 2: true, 3: true}
	routes := []struct{ method, path string }{
		{"POST", "/api/whatsapp/send-message"},
		{"GET", "/api/whatsapp/accounts"},
		{"POST", "/api/whatsapp/add-account"},
		{"GET", "/api/whatsapp/threads/{a}"},
		{"GET", "/api/whatsapp/inbox/{a}"},
		{"GET", "/api/whatsapp/messages/{a}/{t}"},
		{"PATCH", "/api/whatsapp/accounts/{a}/name"},
		{"POST", "/api/whatsapp/regenerate-qr/{a}"},
		{"DELETE", "/api/whatsapp/accounts/{a}"},
		{"POST", "/api/whatsapp/disconnect/{a}"},
		{"GET", "/api/whatsapp/qr/{a}"},
		{"OPTIONS", "/api/whatsapp/send-message"},
	}
	send := func(to, text string) string {
		b, _ := json.Marshal(map[string]any{"accountId": sendAcc, "to": to, "message": text})
		return string(b)
	}
	long := strings.Repeat("A", 5000)
	for _, s := range []struct {
		route, tok       uint8
		acc, thread, rid string
		body             string
	}{
		{0, 3, "", "", "k-1", send(peerJID, "one")},
		{0, 3, "", "", "k-1", send("40722999777", "one")},
		{0, 3, "", "", "k-1", send(peerJID, "two")},
		{0, 3, "", "", "k-1", `{"accountId":"account_prod_off","to":"` + peerJID + `","message":"one"}`},
		{0, 3, "", "", "x/y/z", send(peerJID, "hi")},
		{0, 3, "", "", "a/b", send(peerJID, "hi")},
		{0, 3, "", "", "..", send(peerJID, "hi")},
		{0, 3, "", "", ".", send(peerJID, "hi")},
		{0, 3, "", "", "__x__", send(peerJID, "hi")},
		{0, 3, "", "", "__name__", send(peerJID, "hi")},
		{0, 3, "", "", strings.Repeat("k", 129), send(peerJID, "hi")},
		{0, 3, "", "", "caf\xc3\xa9", send(peerJID, "hi")},
		{0, 3, "", "", "gen_00000000000000000000000000000000", send(peerJID, "hi")},
		{0, 3, "", "", "", send(peerJID, "keyless")},
		{0, 3, "", "", "", `{"accountId":"` + long + `","to":"40722999888","message":"x"}`},
		{0, 3, "", "", "", `{"accountId":"` + sendAcc + `","to":"40722999888","message":"x","threadId":"` + long + `"}`},
		{0, 3, "", "", "", "null"},
		{2, 1, "", "", "", "null"},
		{2, 1, "", "", "", `{"name":"abc\u202etxt.exe"}`},
		{6, 1, sendAcc, "", "", `{"name":"a\u2066b"}`},
		{6, 1, sendAcc, "", "", "null"},
		{5, 2, sendAcc, sendThread + "%2Fmessages%2Fdoc-1", "", ""},
		{5, 2, sendAcc, url.PathEscape(sendThread), "", ""},
		{5, 2, sendAcc, sendAcc + "__" + long, "", ""},
		{3, 2, sendAcc + "%2Fx", "", "", ""},
		{4, 2, long, "", "", ""},
		{8, 1, long, "", "", ""},
		{7, 1, "__x__", "", "", ""},
		{10, 1, "a%00b", "", "", ""},
		{1, 5, "", "", "", ""},
		{3, 6, sendAcc, "", "", ""},
		{1, 4, "", "", "", ""},
		{1, 0, "", "", "", ""},
		{11, 0, "", "", "", ""},
	} {
		f.Add(s.route, s.tok, s.acc, s.thread, s.rid, s.body)
	}
	h := e.srv.Config.Handler
	seen := map[string]string{} // caller's key → the request it sent
	f.Fuzz(func(t *testing.T, route, tok uint8, acc, thread, rid, body string) {
		rt := routes[int(route)%len(routes)]
		ti := int(tok) % len(tokens)
		if acc == "" {
			acc = sendAcc
		}
		if thread == "" {
			thread = url.PathEscape(sendThread)
		}
		target := strings.NewReplacer("{a}", acc, "{t}", thread).Replace(rt.path)
		var rd io.Reader = http.NoBody // as the server gives a request without one
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, err := http.NewRequest(rt.method, "http://127.0.0.1"+target, rd)
		if err != nil || strings.ContainsAny(rid, "\r\n\x00") {
			return // not a request a client can send
		}
		if tokens[ti] != "" {
			req.Header.Set("Authorization", "Bearer "+tokens[ti])
		}
		if rid != "" {
			req.Header.Set("X-Request-ID", rid)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		req.RemoteAddr = "127.0.0.1:4000"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		code, raw := rec.Code, rec.Body.String()
		var ans map[string]any
		_ = json.Unmarshal([]byte(raw), &ans)
		if code >= 500 && code != http.StatusServiceUnavailable {
			t.Fatalf("%s %s: %d %s", rt.method, target, code, raw)
		}
		if strings.Contains(raw, e.svc) {
			t.Fatalf("service token in an answer: %s", raw)
		}
		for _, id := range []string{acc, thread, rid} {
			if len(id) > 128 && strings.Contains(raw, id) {
				t.Fatalf("a %d-byte id echoed: %.200s", len(id), raw)
			}
		}
		// The mux itself may redirect a path to its clean form (307) or
		// refuse a method (405): no handler ran.
		if !valid[ti] && rt.method != "OPTIONS" && code != 401 && code != 403 && code != 429 && code != 404 && code != 405 && code/100 != 3 {
			t.Fatalf("token %d (not valid): %s %s answered %d %.300s", ti, rt.method, target, code, raw)
		}
		if code/100 == 2 && rt.path == "/api/whatsapp/send-message" && rt.method == "POST" {
			key, _ := ans["idempotencyKey"].(string)
			if !docIDSafe(key) {
				t.Fatalf("send answered 200 with key %q", key)
			}
			var b sendBody
			_ = json.Unmarshal([]byte(body), &b)
			p, err := parseSend(b, "", "x", "")
			if err != nil {
				t.Fatalf("accepted a send parseSend refuses (%v): %s", err, body)
			}
			fp := p.AccountID + "|" + p.To.String() + "|" + p.Body
			if !strings.HasPrefix(key, generatedKeyPrefix) {
				if prev, ok := seen[key]; ok && prev != fp {
					t.Fatalf("key %q answered 200 for %q after %q", key, fp, prev)
				}
				seen[key] = fp
			}
		}
		if code == 200 && strings.HasPrefix(rt.path, "/api/whatsapp/messages/") {
			th, _ := ans["thread"].(map[string]any)
			want, _ := url.PathUnescape(thread)
			if th == nil || th["id"] != want {
				t.Fatalf("asked for thread %q, got %v", want, th)
			}
		}
	})
}
