package daemon_test

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/watest"
	"github.com/wactl/wactl/pkg/daemon"
	"github.com/wactl/wactl/pkg/dedupe"
	"github.com/wactl/wactl/pkg/lock"
	"github.com/wactl/wactl/pkg/sessions"
	fsstore "github.com/wactl/wactl/pkg/store/firestore"
	"github.com/wactl/wactl/pkg/store/journal"
)

// TestFirestoreMode runs the daemon as production does: Firestore store
// behind the local journal, Firestore lease (official emulator). The
// account document mirrors the state, a peer message lands in
// threads/{threadId}/messages/{docId} with createdAt, and the lease
// document is the legacy one, released on shutdown.
func TestFirestoreMode(t *testing.T) {
	client, _ := fsemu.NewClient(t)
	srv := wafake.Start(t)
	dataDir := t.TempDir()
	sess, err := sessions.Open(filepath.Join(dataDir, "sessions"), sessions.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := watest.Pair(t, srv, sess, "40711000071")
	ctx := context.Background()
	fs, err := fsstore.Open(ctx, fsstore.Options{Client: client})
	if err != nil {
		t.Fatal(err)
	}
	st, err := journal.Open(filepath.Join(dataDir, "journal.db"), fs, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	run := &running{url: "http://" + ln.Addr().String(), done: make(chan error, 1), notes: &notes{}, d: make(chan *daemon.Daemon, 1)}
	dctx, cancel := context.WithCancel(ctx)
	run.cancel = cancel
	addr := srv.Addr()
	go func() {
		run.done <- daemon.Run(dctx, daemon.Options{
			Listener: ln, InstanceID: "host-fs", Service: "wactl", Sessions: sess, Store: st, StoreBackend: "firestore",
			NewLock: func(cb lock.Callbacks) (lock.Lock, error) {
				return lock.NewFirestore(lock.FirestoreOptions{Client: client, InstanceID: "host-fs", DataDir: dataDir,
					Timing: lock.Timing{TTL: 4 * time.Second, Renew: time.Second, SafetyMargin: time.Second, Retry: 500 * time.Millisecond}, Callbacks: cb})
			},
			Notifier:        run.notes,
			ConfigureClient: func(c *whatsmeow.Client) { wafake.ConfigureClient(c, addr) },
		})
	}()
	t.Cleanup(func() { run.stop() })
	m := run.waitHealth(t, "connected through Firestore mode", connected(1))
	if m["store"].(map[string]any)["backend"] != "firestore" || m["lockStatus"] != "held_by_this_instance" {
		t.Fatalf("health %v", m)
	}
	watest.Eventually(t, 10*time.Second, "accounts/{id} connected", func() bool {
		snap, err := client.Collection("accounts").Doc(a.ID).Get(ctx)
		return err == nil && snap.Data()["status"] == "connected"
	})

	peer := peerJID("40799000071")
	id, err := srv.SendFromPeer(ctx, peer, a.Device.ToNonAD(), text("from firestore mode"))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.WaitDelivered(ctx, a.Device, id); err != nil {
		t.Fatal(err)
	}
	thread := dedupe.ThreadID(a.ID, dedupe.CanonicalJID(peer.String()))
	snap, err := client.Collection("threads").Doc(thread).Collection("messages").Doc(dedupe.MessageDocID(a.ID, id)).Get(ctx)
	if err != nil {
		t.Fatalf("message document: %v", err)
	}
	d := snap.Data()
	if d["body"] != "from firestore mode" || d["createdAt"] == nil || d["direction"] != "inbound" {
		t.Fatalf("document %v", d)
	}
	if _, ok := d["tsClient"].(time.Time); !ok {
		t.Fatalf("tsClient is %T, want a Timestamp", d["tsClient"])
	}
	lease, err := client.Doc(lock.DefaultDocPath).Get(ctx)
	if err != nil || lease.Data()["holderInstanceId"] != "wactl:host-fs" {
		t.Fatalf("lease %v %v", lease, err)
	}
	if err := run.stop(); err != nil {
		t.Fatal(err)
	}
	lease, _ = client.Doc(lock.DefaultDocPath).Get(ctx)
	until, _ := lease.Data()["leaseUntil"].(int64)
	if time.UnixMilli(until).After(time.Now().Add(time.Second)) {
		t.Fatalf("lease not released on shutdown: leaseUntil %v", time.UnixMilli(until))
	}
}
