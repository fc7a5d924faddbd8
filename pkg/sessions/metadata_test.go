package sessions

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCreateGetUpdate(t *testing.T) {
	t.Parallel()
	s, clock := newStore(t)
	a := mustCreate(t, s, testID)
	if a.CreatedAt != clock.t || a.SchemaVersion != SchemaVersion || a.Phone != "+40712345678" {
		t.Fatalf("created %+v", a)
	}
	assertMode(t, s.Dir(testID), 0o700)
	assertMode(t, filepath.Join(s.Dir(testID), metadataFile), 0o600)

	again, err := s.Create(NewAccount{ID: testID, Name: "Other"})
	if !errors.Is(err, ErrAccountExists) || again == nil || again.Name != "Shop" {
		t.Fatalf("second Create = %+v, %v", again, err)
	}

	clock.t = clock.t.Add(time.Hour)
	if _, err := s.MarkPaired(testID, "40712345678:3@s.whatsapp.net"); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(testID)
	if err != nil {
		t.Fatal(err)
	}
	if got.PairedJID != "40712345678:3@s.whatsapp.net" || got.PairedAt == nil || !got.PairedAt.Equal(clock.t) || got.Name != "Shop" {
		t.Fatalf("after MarkPaired: %+v", got)
	}
	if got, _ := s.MarkUnpaired(testID); got.PairedJID != "" || got.PairedAt != nil {
		t.Fatalf("after MarkUnpaired: %+v", got)
	}
	raw, _ := os.ReadFile(filepath.Join(s.Dir(testID), metadataFile))
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil || m["accountId"] != testID || m["schemaVersion"] != float64(1) {
		t.Fatalf("account.json = %s (%v)", raw, err)
	}
	entries, _ := os.ReadDir(s.Dir(testID))
	if len(entries) != 1 {
		t.Fatalf("account dir holds %v, want only account.json", entries)
	}
}

func TestCreateValidates(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	for _, n := range []NewAccount{
		{ID: "../escape"},
		{ID: "removed"},
		{ID: testID, Phone: "0712345678"},
		{ID: testID, Phone: "+40 712"},
		{ID: testID, Phone: "+1234567890123456"},
	} {
		if _, err := s.Create(n); err == nil {
			t.Errorf("Create(%+v) succeeded", n)
		}
	}
	if _, err := s.Update(testID, func(a *Account) error { return nil }); !errors.Is(err, ErrNoAccount) {
		t.Errorf("Update of missing account = %v, want ErrNoAccount", err)
	}
	mustCreate(t, s, testID)
	if _, err := s.Update(testID, func(a *Account) error { a.Phone = "bad"; return nil }); err == nil {
		t.Error("Update accepted a bad phone")
	}
}

func TestCreateAdoptsDirWithoutMetadata(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	os.Mkdir(s.Dir(testID), 0o700)
	creds := filepath.Join(s.Dir(testID), "creds.json")
	os.WriteFile(creds, []byte(`{"legacy":true}`), 0o600)
	if _, err := s.Get(testID); !errors.Is(err, ErrNoMetadata) {
		t.Fatalf("Get = %v, want ErrNoMetadata", err)
	}
	mustCreate(t, s, testID)
	if b, _ := os.ReadFile(creds); string(b) != `{"legacy":true}` {
		t.Fatal("legacy file touched")
	}
}

func TestMetadataMismatchAndFutureSchema(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	mustCreate(t, s, testID)
	path := filepath.Join(s.Dir(testID), metadataFile)
	os.WriteFile(path, []byte(`{"schemaVersion":1,"accountId":"`+testID2+`"}`), 0o600)
	if _, err := s.Get(testID); err == nil || !strings.Contains(err.Error(), "renamed or the file copied") {
		t.Errorf("mismatched id: %v", err)
	}
	os.WriteFile(path, []byte(`{"schemaVersion":99,"accountId":"`+testID+`"}`), 0o600)
	if _, err := s.Get(testID); err == nil || !strings.Contains(err.Error(), "upgrade wactl") {
		t.Errorf("future schema: %v", err)
	}
	os.WriteFile(path, []byte(`{"schemaVer`), 0o600)
	if _, err := s.Get(testID); err == nil || !strings.Contains(err.Error(), "not valid JSON") {
		t.Errorf("torn file: %v", err)
	}
}

// readNameWhole fails unless account.json is complete, valid JSON.
func readNameWhole(t *testing.T, s *Store) string {
	t.Helper()
	a, err := s.Get(testID)
	if err != nil {
		raw, _ := os.ReadFile(filepath.Join(s.Dir(testID), metadataFile))
		t.Fatalf("account.json torn after a crash: %v (%d bytes)", err, len(raw))
	}
	return a.Name
}

func TestMetadataCrashAtEveryStepLeavesOldOrNew(t *testing.T) {
	t.Parallel()
	for stage, want := range map[string]string{"written": "Shop", "synced": "Shop", "renamed": "new"} {
		t.Run(stage, func(t *testing.T) {
			t.Parallel()
			s, _ := newStore(t)
			mustCreate(t, s, testID)
			c, line := startChild(t, "meta-crash", s.Root(), testID, "STAGE="+stage)
			err := c.cmd.Wait()
			if line != "" || err == nil || !strings.Contains(err.Error(), "killed") {
				t.Fatalf("child did not die at %s: line %q, %v", stage, line, err)
			}
			if got := readNameWhole(t, s); got != want {
				t.Fatalf("after a crash at %s name = %q, want %q", stage, got, want)
			}
		})
	}
}

func TestMetadataSurvivesKillDuringRewrites(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	mustCreate(t, s, testID)
	long := strings.Repeat("long", 4096)
	for i := 0; i < 8; i++ {
		c, line := startChild(t, "meta-loop", s.Root(), testID)
		if line != "looping" {
			t.Fatalf("child: %q", line)
		}
		time.Sleep(time.Duration(1+i*3) * time.Millisecond)
		c.kill9(t)
		if got := readNameWhole(t, s); got != "short" && got != long {
			t.Fatalf("name after kill = %.20q…", got)
		}
	}
}
