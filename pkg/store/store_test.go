package store

import (
	"errors"
	"testing"
)

func TestCursorRoundTrip(t *testing.T) {
	for _, c := range []struct {
		pos int64
		key string
	}{{0, "1"}, {-62135596800000000, "threads/a__b@s.whatsapp.net"}, {1772618400123, "9223372036854775807"}, {5, "a.b/c"}} {
		pos, key, err := DecodeCursor(EncodeCursor(c.pos, c.key))
		if err != nil || pos != c.pos || key != c.key {
			t.Errorf("%d %q → %d %q %v", c.pos, c.key, pos, key, err)
		}
	}
	for _, bad := range []string{"", "!!", "MTIz", "MTIzLg", "LjE", "KzEuMQ", "LTA1LjE", "MS4x="} {
		if _, _, err := DecodeCursor(bad); !errors.Is(err, ErrBadCursor) {
			t.Errorf("DecodeCursor(%q) = %v, want ErrBadCursor", bad, err)
		}
	}
}

// FuzzDecodeCursor: any input either fails with ErrBadCursor or decodes to
// a position and key that encode back to the same cursor.
func FuzzDecodeCursor(f *testing.F) {
	f.Add(EncodeCursor(1772618400123, "42"))
	f.Add(EncodeCursor(-1, "threads/x/messages/y"))
	f.Add("garbage")
	f.Fuzz(func(t *testing.T, c string) {
		pos, key, err := DecodeCursor(c)
		if err != nil {
			if !errors.Is(err, ErrBadCursor) {
				t.Fatalf("error %v does not wrap ErrBadCursor", err)
			}
			return
		}
		if key == "" {
			t.Fatal("empty key accepted")
		}
		if back := EncodeCursor(pos, key); back != c {
			t.Fatalf("%q decodes to %d %q, which encodes to %q", c, pos, key, back)
		}
	})
}
