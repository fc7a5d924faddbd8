package dedupe

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzPhone(f *testing.F) {
	for _, s := range []string{"0712 345 678", "+40712345678", "", "00", "+", "abc0def1"} {
		f.Add(s, "40")
	}
	f.Fuzz(func(t *testing.T, raw, cc string) {
		p, err := CanonicalPhone(raw, cc)
		if err != nil {
			if strings.ContainsAny(raw, "0123456789") {
				t.Fatalf("error for %q with digits: %v", raw, err)
			}
			return
		}
		if p[0] != '+' || len(p) < 2 {
			t.Fatalf("%q → %q: not +digits", raw, p)
		}
		for _, c := range p[1:] {
			if c < '0' || c > '9' {
				t.Fatalf("%q → %q: not +digits", raw, p)
			}
		}
		// Canonical form is a fixed point (unless it starts with 0, which a
		// country code of zeros can produce).
		if p[1] != '0' {
			if again, _ := CanonicalPhone(p, cc); again != p {
				t.Fatalf("not idempotent: %q → %q → %q", raw, p, again)
			}
		}
		id := AccountIDFromCanonical("", p)
		if len(id) != len("account_prod_")+32 || !strings.HasPrefix(id, "account_prod_") {
			t.Fatalf("account id %q", id)
		}
	})
}

func FuzzCanonicalJID(f *testing.F) {
	for _, s := range []string{"40722000111:12@s.whatsapp.net", " +4072@C.US", "1203@g.us", "1:2@lid", "@", ":@", "a@b@c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		j := CanonicalJID(raw)
		if again := CanonicalJID(j); again != j {
			t.Fatalf("not idempotent: %q → %q → %q", raw, j, again)
		}
		if _, server, _ := strings.Cut(j, "@"); strings.HasPrefix(j, "+") || server == ServerLegacy {
			t.Fatalf("%q → %q keeps + or @c.us", raw, j)
		}
		if user, _, ok := strings.Cut(j, "@"); ok && strings.Contains(user, ":") {
			t.Fatalf("%q → %q keeps a device", raw, j)
		}
		switch PeerType(j) {
		case PeerUser, PeerGroup, PeerLID:
		default:
			t.Fatalf("peer type of %q", j)
		}
		if p := NormalizedPhone(j); p != "" && p != "+"+JIDUser(j) {
			t.Fatalf("phone %q of %q", p, j)
		}
	})
}

func FuzzNormalizeText(f *testing.F) {
	for _, s := range []string{"  a  b ", "\u00a0x\ufeff", "", "a\u0085b", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := NormalizeText(s)
		if NormalizeText(n) != n {
			t.Fatalf("not idempotent: %q → %q", s, n)
		}
		if strings.HasPrefix(n, " ") || strings.HasSuffix(n, " ") || strings.Contains(n, "  ") {
			t.Fatalf("%q → %q has stray spaces", s, n)
		}
		for _, r := range n {
			if r != ' ' && isJSSpace(r) {
				t.Fatalf("%q → %q keeps whitespace %U", s, n, r)
			}
		}
		if utf8.ValidString(s) && !utf8.ValidString(n) {
			t.Fatalf("valid %q → invalid %q", s, n)
		}
		_ = Fingerprint("j", "inbound", "", 1, TypeText, s)
	})
}
