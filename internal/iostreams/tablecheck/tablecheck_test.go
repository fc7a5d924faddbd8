package tablecheck

import (
	"bytes"
	"fmt"
	"testing"
	"text/tabwriter"
)

// The checker catches what tabwriter does with a coloured header: it
// counts the escapes as width, so the rows start left of the header's
// columns.
func TestCatchesTabwriterWithColour(t *testing.T) {
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\x1b[1mSIZE\x1b[0m\t\x1b[1mTHREAD\x1b[0m\t\x1b[1mDOCS\x1b[0m")
	fmt.Fprintln(tw, "3\tthread-a\tx")
	tw.Flush()
	if len(Problems(b.String(), 80, "SIZE")) == 0 {
		t.Fatalf("misaligned table passed:\n%q", b.String())
	}
	if len(Problems("SIZE  THREAD\n3     a\n", 80, "SIZE")) != 0 {
		t.Fatal("aligned table failed")
	}
	if len(Problems("SIZE  THREAD\n3     "+string(bytes.Repeat([]byte("a"), 80))+"\n", 80, "SIZE")) == 0 {
		t.Fatal("81-column line passed")
	}
}
