package dedupe

import (
	"errors"
	"testing"
	"time"
)

// Expected hashes below were computed outside Go, e.g.
//
//	printf '%s' '+40712345678' | sha256sum | cut -c1-32
//	printf '%s' 'account_prod_cd7b…|3EB0C431D5A2B7F8E9' | sha1sum | cut -c1-24
const acc = "account_prod_cd7b11e308a59fd9ab810bce5faf8393"

func TestPhone(t *testing.T) {
	for _, tc := range []struct {
		raw, cc, want string
		err           error
	}{
		{"0712 345 678", "", "+40712345678", nil},
		{"+40 (712) 345-678", "", "+40712345678", nil},
		{"40712345678", "", "+40712345678", nil},
		{"0712345678", "49", "+49712345678", nil},
		{"0712345678", "+49", "+49712345678", nil},
		{"+1 555 123 4567", "", "+15551234567", nil},
		// The rule is literal: "00" is not read as an international prefix.
		{"0040712345678", "", "+40040712345678", nil},
		{"0", "", "+40", nil},
		{"", "", "", ErrNoDigits},
		{"+ - ()", "", "", ErrNoDigits},
		{"٠٧١٢", "", "", ErrNoDigits}, // non-ASCII digits are not digits here
	} {
		got, err := CanonicalPhone(tc.raw, tc.cc)
		if got != tc.want || !errors.Is(err, tc.err) {
			t.Errorf("CanonicalPhone(%q, %q) = %q, %v; want %q, %v", tc.raw, tc.cc, got, err, tc.want, tc.err)
		}
	}
}

func TestAccountID(t *testing.T) {
	for _, tc := range []struct{ ns, phone, want string }{
		// The hash input is "+40712345678" (with the plus); hashing the
		// bare digits would give account_prod_701d93b24c3eec031b8b5846ba071e01.
		{"", "0712 345 678", acc},
		{"prod", "+40712345678", acc},
		{"dev", "+40712345678", "account_dev_cd7b11e308a59fd9ab810bce5faf8393"},
		{"", "+1 555 123 4567", "account_prod_8a59780bb8cd2ba022bfa5ba2ea3b6e0"},
	} {
		got, err := AccountID(tc.ns, tc.phone, "")
		if err != nil || got != tc.want {
			t.Errorf("AccountID(%q, %q) = %q, %v; want %q", tc.ns, tc.phone, got, err, tc.want)
		}
	}
	if _, err := AccountID("", "no digits", ""); !errors.Is(err, ErrNoDigits) {
		t.Errorf("AccountID without digits: %v", err)
	}
}

func TestCanonicalJID(t *testing.T) {
	for _, tc := range []struct{ raw, want, peer, phone string }{
		{"40722000111@s.whatsapp.net", "40722000111@s.whatsapp.net", PeerUser, "+40722000111"},
		{"  +40722000111@C.US ", "40722000111@s.whatsapp.net", PeerUser, "+40722000111"},
		{"40722000111:12@s.whatsapp.net", "40722000111@s.whatsapp.net", PeerUser, "+40722000111"},
		{"40722000111.0:3@s.whatsapp.net", "40722000111.0@s.whatsapp.net", PeerUser, ""},
		{"120363012345678901@g.us", "120363012345678901@g.us", PeerGroup, ""},
		{"123456789012345:4@LID", "123456789012345@lid", PeerLID, ""},
		{"40722000111", "40722000111", PeerUser, ""},
		{"", "", PeerUser, ""},
		{"status@broadcast", "status@broadcast", PeerUser, ""},
	} {
		got := CanonicalJID(tc.raw)
		if got != tc.want {
			t.Errorf("CanonicalJID(%q) = %q, want %q", tc.raw, got, tc.want)
		}
		if p := PeerType(got); p != tc.peer {
			t.Errorf("PeerType(%q) = %q, want %q", got, p, tc.peer)
		}
		if p := NormalizedPhone(got); p != tc.phone {
			t.Errorf("NormalizedPhone(%q) = %q, want %q", got, p, tc.phone)
		}
	}
}

func TestIDs(t *testing.T) {
	jid := "40722000111@s.whatsapp.net"
	if got := ThreadID(acc, jid); got != acc+"__"+jid {
		t.Errorf("ThreadID = %q", got)
	}
	if got := MessageDocID(acc, "3EB0C431D5A2B7F8E9"); got != "38b91a212df79d5bacc16bb4" {
		t.Errorf("MessageDocID = %q", got)
	}
	if got := MappingID(acc, "3EB0C431D5A2B7F8E9"); got != acc+"__3EB0C431D5A2B7F8E9" {
		t.Errorf("MappingID = %q", got)
	}
	sk := StableKey(acc, jid, "3EB0C431D5A2B7F8E9", false, "")
	if want := acc + "|" + jid + "|3EB0C431D5A2B7F8E9|0|"; sk != want {
		t.Errorf("StableKey = %q, want %q", sk, want)
	}
	if got := StableKeyHash(sk); got != "d8d93df6" {
		t.Errorf("StableKeyHash = %q", got)
	}
	gk := StableKey(acc, "120363012345678901@g.us", "ABCDEF", true, jid)
	if got := StableKeyHash(gk); got != "f4db4edd" {
		t.Errorf("group StableKeyHash = %q", got)
	}
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	fp := Fingerprint(jid, "inbound", jid, ts, TypeText, "  Hello \n\t world ")
	if fp != "67b59fa261fbe404961f1be905e2498f337fb7c7" || FingerprintHash(fp) != sha1Hex(fp)[:8] {
		t.Errorf("Fingerprint = %q", fp)
	}
	if fp := Fingerprint(jid, "outbound", "", 0, TypeImage, ""); fp != "9f429778d46eb0bb623aaa7dbd1c57f9b5045377" {
		t.Errorf("Fingerprint with unknown time = %q", fp)
	}
}

func TestNormalizeText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"  Hello \n\t world ", "Hello world"},
		{"a\u00a0\u2003b\ufeff", "a b"},
		{"a\u0085b", "a\u0085b"}, // not in JavaScript's \s
		{"", ""},
		{" \r\n ", ""},
		{"ăîș  ț", "ăîș ț"},
	} {
		if got := NormalizeText(tc.in); got != tc.want {
			t.Errorf("NormalizeText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
