package audit_test

import (
	"testing"
	"time"

	"github.com/wactl/wactl/pkg/audit"
)

func FuzzParseTimeString(f *testing.F) {
	for _, s := range []string{"2026-01-21T10:00:00.000Z", "1737453600000", "1737453600", "Tue Jan 21 2026 12:00:00 GMT+0200 (Eastern European Standard Time)", "", "x", "-5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ts, ok := audit.ParseTimeString(s)
		if !ok {
			if !ts.IsZero() {
				t.Fatalf("%q: failure with a time %v", s, ts)
			}
			return
		}
		if ts.Location() != time.UTC {
			t.Fatalf("%q: %v not UTC", s, ts)
		}
		// What the old system's toISOString would write reads back the same.
		back, ok := audit.ParseTimeString(ts.Format("2006-01-02T15:04:05.000Z07:00"))
		if ts.Year() >= 0 && ts.Year() <= 9999 && (!ok || !back.Equal(ts.Truncate(time.Millisecond))) {
			t.Fatalf("%q: %v formats and reads back as %v %v", s, ts, back, ok)
		}
	})
}
