package api

import (
	"context"
	"testing"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/pkg/store/firestore"
)

// The same exactly-once checks against the Firestore backend on the
// official emulator: three POSTs of one request id, the proxy's outbox item
// and the worker → one WhatsApp send, one document with status sent.
func TestFirestoreSendIdempotentAcrossPaths(t *testing.T) {
	client, _ := fsemu.NewClient(t)
	clk := newClock()
	st, err := firestore.Open(context.Background(), firestore.Options{Client: client, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	testSendIdempotentAcrossPaths(t, newEnvWithStore(t, st, clk))
}

func TestFirestoreSendQueued(t *testing.T) {
	client, _ := fsemu.NewClient(t)
	clk := newClock()
	st, err := firestore.Open(context.Background(), firestore.Options{Client: client, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	testSendQueued(t, newEnvWithStore(t, st, clk))
}
