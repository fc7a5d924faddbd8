package sessions

import (
	"context"
	"os"
	"strings"
	"testing"
)

// TestImportFailureLeavesAccountAlone: a snapshot whose rows the database
// refuses (a whatsmeow CHECK constraint) fails the restore, and the local
// account is exactly as it was, with no temporary directory left behind.
func TestImportFailureLeavesAccountAlone(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	mustCreate(t, s, testID)
	d, err := s.OpenDevice(ctx, testID, DeviceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pairFake(t, s, d, "40712345670")
	d.Close()
	before, err := s.ExportAccount(ctx, testID)
	if err != nil {
		t.Fatal(err)
	}
	bad, err := s.ExportAccount(ctx, testID)
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range bad.Tables {
		if tb.Name == "whatsmeow_device" {
			tb.Rows[0][4] = []byte{1, 2, 3} // noise_key must be 32 bytes
		}
	}
	bad.seal()
	bad.SnapshotAt = bad.SnapshotAt.Add(24 * 3600e9) // "newer" than the local copy
	_, err = s.ImportAccount(ctx, bad, restoreCheck(bad, true))
	if err == nil || !strings.Contains(err.Error(), "whatsmeow_device") {
		t.Fatalf("import of refused rows: %v", err)
	}
	after, err := s.ExportAccount(ctx, testID)
	if err != nil || after.Digest != before.Digest {
		t.Fatalf("the local account changed: %v", err)
	}
	entries, _ := os.ReadDir(s.Root())
	for _, e := range entries {
		if e.Name() != testID {
			t.Fatalf("left in the root: %s", e.Name())
		}
	}
}
