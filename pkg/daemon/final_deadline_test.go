package daemon_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/watest"
	"github.com/wactl/wactl/pkg/daemon"
	"github.com/wactl/wactl/pkg/lock"
	"github.com/wactl/wactl/pkg/store"
)

// lockDocs holds each document with a transaction that read it and never
// commits: what a host killed (kill -9) inside a transaction leaves behind.
// Firestore refuses writes of those documents (the emulator: Aborted after
// ~2 s) until the locks go (the returned release).
func lockDocs(t *testing.T, c *firestore.Client, refs []*firestore.DocumentRef) (release func()) {
	t.Helper()
	return fsemu.HoldDeadTransaction(t, c, refs...)
}

// otherAccountMessage is an inbound message of another account this host
// records (its counters are flushed with the rest).
func otherAccountMessage(acc string, i int) store.Message {
	jid := "40700000001@s.whatsapp.net"
	id := fmt.Sprintf("3EB0FD%08d", i)
	return store.Message{AccountID: acc, ThreadID: acc + "__" + jid, DocID: fmt.Sprintf("%024x", i+1),
		ClientJID: jid, ClientJIDRaw: jid, RawJID: jid, ResolvedJID: jid, SenderJID: jid, PeerType: "user",
		Direction: "inbound", Body: "hi", WAMessageID: id, WAMessageIDRaw: id, Status: "delivered",
		MessageType: "text", TsClient: time.Now(), Source: "realtime"}
}

// TestGracefulStopReleasesWithinBudget: SIGINT right after messages and
// receipts, while Firestore refuses the counter writes of several accounts
// (documents a killed host's transaction still locks, as in the CI failure
// of TestPostgresFailoverWithoutQR) and the account's final state: the
// final writes end within their budget (a third of the shutdown timeout),
// so the lease is released on time; the journal-first receipts are shipped
// before the release and nothing is left in the journal.
func TestGracefulStopReleasesWithinBudget(t *testing.T) {
	client, _ := fsemu.NewClient(t)
	r, accts := newRig(t, "40711000083")
	a := accts[0]
	ref := new(lock.FenceRef)
	// Counter deltas are written every 100 ms in the background, so a
	// round is under way when the stop comes (as every 2 s in serve).
	st := fencedFirestore(t, r, client, ref, 100*time.Millisecond)
	run := r.startWith("host-fs", st, func(o *daemon.Options) {
		o.StoreBackend = "firestore"
		o.NewLock = func(cb lock.Callbacks) (lock.Lock, error) {
			lk, err := lock.NewFirestore(lock.FirestoreOptions{Client: client, InstanceID: "host-fs", DataDir: r.dataDir,
				Timing: lock.Timing{TTL: 6 * time.Second, Renew: time.Second, SafetyMargin: time.Second, Retry: 500 * time.Millisecond}, Callbacks: cb})
			if err == nil {
				ref.Set(lk)
			}
			return lk, err
		}
	})
	run.waitHealth(t, "connected", connected(1))
	ctx := context.Background()
	peer := peerJID("40799000083")
	send := func(body string) string {
		id, err := r.srv.SendFromPeer(ctx, peer, a.Device.ToNonAD(), text(body))
		if err != nil {
			t.Fatal(err)
		}
		if err := r.srv.WaitDelivered(ctx, a.Device, id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	// This host also counts for other accounts (20 in the CI case).
	others := []string{"account_test_00000000000000000000000000000091", "account_test_00000000000000000000000000000092",
		"account_test_00000000000000000000000000000093"}
	send("before")
	for k, acc := range others {
		if _, err := st.RecordMessage(ctx, otherAccountMessage(acc, k)); err != nil {
			t.Fatal(err)
		}
	}
	all := append([]string{a.ID}, others...)
	watest.Eventually(t, 10*time.Second, "counters documents written", func() bool {
		for _, acc := range all {
			if w, _ := counterDoc(t, client, acc); w == 0 {
				return false
			}
		}
		return true
	})
	// Firestore now refuses, for a while, the writes of every counters
	// document and of the account's document.
	locked := []*firestore.DocumentRef{client.Collection("accounts").Doc(a.ID)}
	for _, acc := range all {
		locked = append(locked, client.Collection("wa_metrics").Doc("counters").Collection("accounts").Doc(acc))
	}
	release := lockDocs(t, client, locked)

	// Right before the stop: a message and counts for every account, and
	// receipts from the peer (journal-first writes).
	ids := []string{send("last")}
	for k, acc := range others {
		if _, err := st.RecordMessage(ctx, otherAccountMessage(acc, 10+k)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		rid := fmt.Sprintf("3EB0AC%08d", i)
		if err := r.srv.SendReceipt(ctx, peer, a.Device.ToNonAD(), append([]string{rid}, ids...), wafake.ReceiptRead); err != nil {
			t.Fatal(err)
		}
		if err := r.srv.WaitReceiptAcked(ctx, a.Device, rid, wafake.ReceiptRead); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("journal backlog at the stop: %d", st.Health(ctx).JournalBacklog)

	stopped := make(chan error, 1)
	t0 := time.Now()
	go func() { stopped <- run.stop() }()
	var released time.Duration
	watest.Eventually(t, 20*time.Second, "lease released", func() bool {
		if _, held := ref.Fence(); held {
			return false
		}
		released = time.Since(t0)
		return true
	})
	// The shutdown timeout is 10 s: the final writes may take a third
	// (3.3 s); the disconnects before them and the release itself take a
	// moment more (more under load). Before, the release waited 16 s for
	// the counters and over 20 s for the account's state.
	t.Logf("lease released %v after the stop", released.Round(time.Millisecond))
	if released > 6*time.Second {
		t.Errorf("lease released %v after the stop: the final writes overran their 3.3 s budget", released.Round(time.Millisecond))
	}
	if n := st.Health(ctx).JournalBacklog; n != 0 {
		t.Errorf("%d journal entries left when the lease was released (Firestore up)", n)
	}
	release()
	if err := <-stopped; err != nil {
		t.Errorf("stop: %v", err)
	}
}
