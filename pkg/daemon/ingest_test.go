package daemon_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wactl/wactl/internal/watest"
	"github.com/wactl/wactl/pkg/daemon"
	"github.com/wactl/wactl/pkg/store"
)

// slowStore takes delay per message, as a store that falls behind does.
type slowStore struct {
	store.Store
	delay time.Duration
}

func (s *slowStore) RecordMessage(ctx context.Context, m store.Message) (store.Outcome, error) {
	time.Sleep(s.delay)
	return s.Store.RecordMessage(ctx, m)
}

// TestIngestBoundedWithSlowStore (issue 21 item 1): messages arrive much
// faster than the store takes them. whatsmeow would queue every node it
// reads (2,048, then a goroutine each); the gate stops reading the socket
// at the bound instead, so the queued nodes stay within it, per account
// and overall, and every message is still recorded exactly once.
func TestIngestBoundedWithSlowStore(t *testing.T) {
	const perAccount, overall, each = 6, 10, 60
	defer daemon.SetIngestLimits(perAccount, overall)()
	r, accts := newRig(t, "40711000061", "40711000062")
	run := r.start("host-a", &slowStore{Store: r.st, delay: 15 * time.Millisecond})
	run.waitHealth(t, "2 accounts connected", connected(2))
	blockedBefore, reliefsBefore := daemon.IngestBlocked(), daemon.IngestReliefs()

	var peakAccount, peakTotal atomic.Int64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(500 * time.Microsecond):
			}
			a, n := daemon.IngestQueued()
			if int64(a) > peakAccount.Load() {
				peakAccount.Store(int64(a))
			}
			if int64(n) > peakTotal.Load() {
				peakTotal.Store(int64(n))
			}
		}
	}()

	ctx := context.Background()
	peer := peerJID("40799000061")
	ids := map[string]bool{}
	for i := 0; i < each; i++ {
		for _, a := range accts {
			id, err := r.srv.SendFromPeer(ctx, peer, a.Device.ToNonAD(), text(fmt.Sprintf("burst %d", i)))
			if err != nil {
				t.Fatal(err)
			}
			ids[id] = true
		}
	}
	watest.Eventually(t, 20*time.Second, "every message recorded", func() bool {
		n := 0
		for _, a := range accts {
			n += len(r.messages(t, r.st, a, peer))
		}
		return n >= len(ids)
	})
	close(stop)
	sampler.Wait()

	for _, a := range accts {
		msgs := r.messages(t, r.st, a, peer)
		seen := map[string]int{}
		for _, m := range msgs {
			seen[m.WAMessageID]++
		}
		if len(msgs) != each || len(seen) != each {
			t.Fatalf("account %s: %d documents for %d distinct ids, want %d each once", a.ID, len(msgs), len(seen), each)
		}
		for id, n := range seen {
			if !ids[id] || n != 1 {
				t.Fatalf("account %s: id %s stored %d times (sent: %v)", a.ID, id, n, ids[id])
			}
		}
	}
	// The overall bound is checked by each account's reader on its own:
	// two readers may both pass it by one node at the same instant. A
	// queue that did not move for a second (a machine too loaded to run
	// the handler) lets nodes through up to twice the per-account bound.
	limA, limT := int64(perAccount), int64(overall+len(accts))
	if r := daemon.IngestReliefs() - reliefsBefore; r > 0 {
		t.Logf("%d stall reliefs: bounds doubled", r)
		limA, limT = 2*perAccount, int64(2*perAccount*len(accts))
	}
	if pa, pt := peakAccount.Load(), peakTotal.Load(); pa > limA || pt > limT {
		t.Fatalf("queued nodes peaked at %d for one account and %d in all; bounds %d and %d", pa, pt, perAccount, overall)
	} else {
		t.Logf("queued nodes peaked at %d for one account, %d in all (bounds %d, %d)", pa, pt, perAccount, overall)
	}
	if daemon.IngestBlocked() == blockedBefore {
		t.Fatal("the gate never held a node back: the test did not reach the bound")
	}
	resp, err := http.Get(run.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"\nwactl_ingest_inflight ", "\nwactl_ingest_blocked_seconds_total ", `wactl_ingest_inflight_limit{scope="account"} 6`} {
		if !strings.Contains(string(body), want) {
			t.Fatalf("/metrics lacks %q", want)
		}
	}
}
