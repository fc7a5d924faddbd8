package dedupe

import (
	"strings"
	"testing"
)

func TestIsMessageDocID(t *testing.T) {
	long := strings.Repeat("x", 300) // longer than the stack buffer
	for _, c := range [][2]string{{"account_prod_x", "3EB0ABC"}, {"", ""}, {long, "3EB0"}, {"a", long}} {
		doc := MessageDocID(c[0], c[1])
		if !IsMessageDocID(doc, c[0], c[1]) {
			t.Errorf("IsMessageDocID(MessageDocID(%.20q, %.20q)) = false", c[0], c[1])
		}
		if IsMessageDocID(doc, c[0], c[1]+"y") || IsMessageDocID(doc[:23]+"0", c[0], c[1]) && doc[23] != '0' || IsMessageDocID(doc+"0", c[0], c[1]) {
			t.Errorf("IsMessageDocID accepted another id for %.20q %.20q", c[0], c[1])
		}
	}
	if n := testing.AllocsPerRun(100, func() { IsMessageDocID("38b91a212df79d5bacc16bb4", "account_prod_x", "3EB0ABC") }); n != 0 {
		t.Errorf("%v allocations per call, want 0", n)
	}
}
