package wafake

import (
	"bytes"
	"testing"
)

func frame(b []byte) []byte {
	return append([]byte{byte(len(b) >> 16), byte(len(b) >> 8), byte(len(b))}, b...)
}

func TestSplitFramesKeepsPartialFrame(t *testing.T) {
	var buf bytes.Buffer
	buf.Write(frame([]byte("one")))
	buf.Write(frame([]byte("two"))[:4])
	got := splitFrames(&buf)
	if len(got) != 1 || string(got[0]) != "one" {
		t.Fatalf("frames = %q", got)
	}
	buf.Write(frame([]byte("two"))[4:])
	got = splitFrames(&buf)
	if len(got) != 1 || string(got[0]) != "two" || buf.Len() != 0 {
		t.Fatalf("frames = %q, left %d", got, buf.Len())
	}
}

// FuzzSplitFrames checks that any chunking of a stream of frames yields the
// same frames, and that garbage never panics.
func FuzzSplitFrames(f *testing.F) {
	f.Add([]byte("hello"), []byte("world"), uint8(2))
	f.Add([]byte{}, []byte{0xff, 0xff}, uint8(1))
	f.Fuzz(func(t *testing.T, a, b []byte, cut uint8) {
		stream := append(frame(a), frame(b)...)
		c := int(cut) % (len(stream) + 1)
		var buf bytes.Buffer
		buf.Write(stream[:c])
		got := splitFrames(&buf)
		buf.Write(stream[c:])
		got = append(got, splitFrames(&buf)...)
		if len(got) != 2 || !bytes.Equal(got[0], a) || !bytes.Equal(got[1], b) || buf.Len() != 0 {
			t.Fatalf("cut %d: frames %q, want %q %q", c, got, a, b)
		}
		var junk bytes.Buffer
		junk.Write(a)
		splitFrames(&junk)
	})
}
