package api

import (
	"context"
	"testing"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/pkg/store/firestore"
)

// newFirestoreEnv is newEnv on a fresh project of the Firestore emulator.
func newFirestoreEnv(t *testing.T, opts ...envOpt) *env {
	t.Helper()
	client, _ := fsemu.NewClient(t)
	clk := newClock()
	st, err := firestore.Open(context.Background(), firestore.Options{Client: client, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return newEnvWithStore(t, st, clk, opts...)
}
