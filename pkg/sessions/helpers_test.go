package sessions

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func contextBackground() context.Context { return context.Background() }

const (
	testID  = "account_prod_0123456789abcdef0123456789abcdef"
	testID2 = "account_prod_fedcba9876543210fedcba9876543210"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func newStore(t testing.TB) (*Store, *fakeClock) {
	t.Helper()
	clock := &fakeClock{t: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)}
	s, err := Open(filepath.Join(t.TempDir(), "sessions"), Options{InstanceID: "test", Now: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	return s, clock
}

func mustCreate(t testing.TB, s *Store, id string) *Account {
	t.Helper()
	a, err := s.Create(NewAccount{ID: id, Name: "Shop", Phone: "+40712345678"})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	st, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Mode().Perm(); got != want {
		t.Errorf("%s mode = %04o, want %04o", path, got, want)
	}
}
