package dedupe

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestMappingDocID(t *testing.T) {
	acc := "account_prod_0123456789abcdef0123456789abcdef"
	for wa, want := range map[string]string{
		"3EB0C431D5A2B7F8E9": acc + "__3EB0C431D5A2B7F8E9", // the old service's id, unchanged
		"3EB0A_1":            acc + "__3EB0A_1",
		"3EB0-x.y:é":         acc + "__3EB0-x.y:é",
		"3EB0A/1":            acc + "__sha256~" + sha256Hex("3EB0A/1"),
		"sha256~abc":         acc + "__sha256~" + sha256Hex("sha256~abc"),
		string([]byte{0xff}): acc + "__sha256~" + sha256Hex(string([]byte{0xff})),
	} {
		if got := MappingDocID(acc, wa); got != want {
			t.Errorf("MappingDocID(%q) = %q, want %q", wa, got, want)
		}
	}
	long := strings.Repeat("A", 1600)
	if got := MappingDocID(acc, long); len(got) > maxDocIDBytes || got != acc+"__sha256~"+sha256Hex(long) {
		t.Errorf("1,600-byte id → %d bytes %.60q", len(got), got)
	}
	edge := strings.Repeat("B", maxDocIDBytes-len(acc)-2)
	if got := MappingDocID(acc, edge); got != acc+"__"+edge {
		t.Error("an id that just fits is not kept raw")
	}
	if got := MappingDocID(acc, edge+"B"); strings.Contains(got, edge) {
		t.Error("an id one byte too long is kept raw")
	}
}

// No two WhatsApp ids of one account share a mapping id, and every id is
// one Firestore accepts.
func FuzzMappingDocIDInjective(f *testing.F) {
	for _, s := range []string{"3EB0A/1", "3EB0A_1", "sha256~", "", "a/b", strings.Repeat("Z", 1500)} {
		f.Add(s, s+"/")
	}
	acc := "account_prod_0123456789abcdef0123456789abcdef"
	f.Fuzz(func(t *testing.T, a, b string) {
		ma, mb := MappingDocID(acc, a), MappingDocID(acc, b)
		if a != b && ma == mb {
			t.Fatalf("%q and %q share mapping id %q", a, b, ma)
		}
		if len(ma) > maxDocIDBytes || strings.ContainsRune(ma, '/') {
			t.Fatalf("mapping id of %q is not a Firestore id: %q", a, ma)
		}
	})
}
