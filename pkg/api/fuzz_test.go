package api

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wactl/wactl/pkg/dedupe"
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
