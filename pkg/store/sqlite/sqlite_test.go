package sqlite

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/wactl/wactl/pkg/store"
	"github.com/wactl/wactl/pkg/store/storetest"
)

func openTest(t *testing.T, env storetest.Env) (store.Store, string) {
	t.Helper()
	dir := env.Reuse
	if dir == "" {
		dir = filepath.Join(t.TempDir(), "data")
	}
	s, err := Open(t.Context(), Options{Dir: dir, StrongDedupe: env.StrongDedupe, Now: env.Now})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, dir
}

func TestContract(t *testing.T) {
	storetest.Run(t, openTest)
}

func TestFilesArePrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s, _ := openTest(t, storetest.Env{Reuse: dir})
	if _, err := s.RecordMessage(t.Context(), storetest.Inbound("account_prod_x", 1, "ID1", storetest.NewClock().Now(), "hi")); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o700 {
		t.Errorf("data dir mode %v, want 0700", st.Mode().Perm())
	}
	for _, name := range []string{FileName, FileName + "-wal", FileName + "-shm"} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", name, st.Mode().Perm())
		}
	}
}
