package pairtest_test

import (
	"strings"
	"testing"

	"github.com/wactl/wactl/pkg/pair"
	"github.com/wactl/wactl/pkg/pair/pairtest"
)

// TestRenderedQRDecodes draws a WhatsApp-like code and reads it back with
// an independent decoder, in both polarities.
func TestRenderedQRDecodes(t *testing.T) {
	code := "2@" + strings.Repeat("AbCd0123+/", 8) + ",noisekey=,identitykey=,advsecret="
	for _, invert := range []bool{false, true} {
		var b strings.Builder
		if err := pair.RenderQR(&b, code, pair.QROptions{Invert: invert}); err != nil {
			t.Fatal(err)
		}
		mods, err := pairtest.ParseHalfBlocks("header line\n"+b.String()+"footer", invert)
		if err != nil {
			t.Fatal(err)
		}
		got, err := pairtest.Decode(mods)
		if err != nil {
			t.Fatalf("invert=%v: %v", invert, err)
		}
		if got != code {
			t.Fatalf("decoded %q, want %q", got, code)
		}
	}
	if _, err := pairtest.Decode([][]bool{{true, false}, {false, true}}); err == nil {
		t.Fatal("garbage decoded")
	}
}
