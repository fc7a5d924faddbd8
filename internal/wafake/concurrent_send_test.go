package wafake_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types/events"

	"github.com/wactl/wactl/internal/wafake"
)

// TestConcurrentSendsFromOnePeerAllDecrypt: messages one peer sends to one
// device at the same moment each get their own Signal counter. Before the
// peer serialised its session updates, two sends could read the same
// session record and encrypt with the same counter; whatsmeow dropped the
// second ("received message with old counter") and it was never
// delivered. CI saw it on the retry path (a resend racing a new message).
func TestConcurrentSendsFromOnePeerAllDecrypt(t *testing.T) {
	t.Parallel()
	srv := wafake.Start(t, fastOpts)
	cli, _, _, rec := pair(t, srv, "15550000039")
	me := *cli.Store.ID
	peer := phoneJID("15557770039")
	ctx := ctxT(t)
	// The session first, so every concurrent send uses the same one.
	first, err := srv.SendFromPeer(ctx, peer, me.ToNonAD(), text("first"))
	if err != nil {
		t.Fatal(err)
	}
	const n = 32
	ids := map[string]bool{first: true}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, err := srv.SendFromPeer(ctx, peer, me.ToNonAD(), text(fmt.Sprint("concurrent ", i)))
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			ids[id] = true
			mu.Unlock()
		}()
	}
	wg.Wait()
	got := map[string]bool{}
	deadline := time.After(15 * time.Second)
	for len(got) < n+1 {
		select {
		case evt := <-rec.ch:
			if m, ok := evt.(*events.Message); ok {
				got[m.Info.ID] = true
			}
		case <-deadline:
			mu.Lock()
			defer mu.Unlock()
			var missing []string
			for id := range ids {
				if !got[id] {
					missing = append(missing, id)
				}
			}
			t.Fatalf("%d of %d messages decrypted; missing %v", len(got), n+1, missing)
		}
	}
	closeSettled(srv, cli, rec, &me)
}
