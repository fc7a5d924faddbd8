package journal_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/pkg/store"
	fsstore "github.com/wactl/wactl/pkg/store/firestore"
	"github.com/wactl/wactl/pkg/store/journal"
)

// rpcTally counts the Firestore RPCs a client makes, by method.
type rpcTally struct {
	mu    sync.Mutex
	calls map[string]int
}

func (r *rpcTally) note(method string) {
	r.mu.Lock()
	r.calls[method[strings.LastIndex(method, "/")+1:]]++
	r.mu.Unlock()
}

// take returns the calls since the last take, as "Method×n, …".
func (r *rpcTally) take() (string, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var parts []string
	n := 0
	for m, c := range r.calls {
		parts = append(parts, fmt.Sprintf("%s×%d", m, c))
		n += c
	}
	sort.Strings(parts)
	r.calls = map[string]int{}
	return strings.Join(parts, ", "), n
}

// countingJournal is the daemon's Firestore store (journal over the
// Firestore backend) on a client whose every RPC is counted.
func countingJournal(t *testing.T) (*journal.Store, *firestore.Client, *rpcTally, string) {
	t.Helper()
	tally := &rpcTally{calls: map[string]int{}}
	c, _ := fsemu.NewClientVia(t,
		grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			tally.note(method)
			return invoker(ctx, method, req, reply, cc, opts...)
		}),
		grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			tally.note(method)
			return streamer(ctx, desc, cc, method, opts...)
		}))
	b, err := fsstore.Open(context.Background(), fsstore.Options{Client: c, CounterFlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "journal.db")
	j, err := journal.Open(path, b, journal.Options{CallTimeout: time.Minute})
	if err != nil {
		b.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	tally.take()
	return j, c, tally, path
}

// TestRoundTripsPerMessage is the trace behind docs/performance.md's
// latency breakdown: the Firestore RPCs and journal commits one live
// message costs, and one API send's store calls. A message into a thread the store has written
// before costs one Commit and no read: the mapping and the document are
// created with Create's not-exists precondition, and the thread summary
// is updated under the update time of the store's own last write to it, so
// anything another writer did fails the commit and is read and decided
// again. Exactly once is checked at the same time.
func TestRoundTripsPerMessage(t *testing.T) {
	j, c, tally, path := countingJournal(t)
	ctx := context.Background()

	if out, err := j.RecordMessage(ctx, msg(0)); err != nil || out != store.Wrote {
		t.Fatalf("first message: %v %v", out, err)
	}
	first, _ := tally.take()
	t.Logf("first message of a thread: %s", first)

	// msg(50) is the next message of msg(0)'s thread.
	if out, err := j.RecordMessage(ctx, msg(50)); err != nil || out != store.Wrote {
		t.Fatalf("second message: %v %v", out, err)
	}
	next, n := tally.take()
	t.Logf("next message of the same thread: %s", next)
	if next != "Commit×1" {
		t.Errorf("a live message into a known thread cost %d RPCs (%s), want one Commit", n, next)
	}

	// A redelivery is still recognised: the blind commit is refused and the
	// message is read and decided again.
	if out, err := j.RecordMessage(ctx, msg(50)); err != nil || out != store.Skipped {
		t.Fatalf("redelivery: %v %v, want skipped", out, err)
	}
	redo, _ := tally.take()
	t.Logf("redelivery: %s", redo)

	if out, err := j.RecordMessage(ctx, msg(200)); err != nil || out != store.Wrote {
		t.Fatalf("message after the redelivery: %v %v", out, err)
	}
	tally.take()

	// The app changes the thread (hides it): the cached update time is
	// stale, the commit is refused, the store reads again, and the app's
	// field is kept while the summary moves on.
	if _, err := c.Collection("threads").Doc(msg(0).ThreadID).Update(ctx, []firestore.Update{{Path: "hidden", Value: true}}); err != nil {
		t.Fatal(err)
	}
	tally.take()
	if out, err := j.RecordMessage(ctx, msg(250)); err != nil || out != store.Wrote {
		t.Fatalf("message after the app's change: %v %v", out, err)
	}
	after, _ := tally.take()
	t.Logf("next message after another writer changed the thread: %s", after)
	th, err := c.Collection("threads").Doc(msg(0).ThreadID).Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if th.Data()["hidden"] != true || th.Data()["lastMessageText"] != msg(250).Body {
		t.Fatalf("thread after the app's change: hidden=%v lastMessageText=%v", th.Data()["hidden"], th.Data()["lastMessageText"])
	}
	tally.take()

	// An API send: the idempotency check (the message and the key's
	// outbox item, one round trip), the document at "sent", the key
	// claimed in the outbox.
	out := msg(150)
	out.Direction, out.Status, out.DocID, out.WAMessageID, out.WAMessageIDRaw = "outbound", "sent", "bench-key-1", "3EB0SEND0001", "3EB0SEND0001"
	chk := store.CheckSend(ctx, j, testAccount, out.WAMessageID, out.DocID)
	if chk.MessageErr != store.ErrNotFound || chk.OutboxErr != store.ErrNotFound {
		t.Fatalf("check before send: message %v, outbox %v; want both not found", chk.MessageErr, chk.OutboxErr)
	}
	pre, n := tally.take()
	t.Logf("send-message before WhatsApp, the idempotency check: %s", pre)
	if n != 1 {
		t.Errorf("the idempotency check cost %d RPCs (%s), want one BatchGetDocuments", n, pre)
	}
	if o, err := j.RecordMessage(ctx, out); err != nil || o != store.Wrote {
		t.Fatalf("sent document: %v %v", o, err)
	}
	rec, _ := tally.take()
	t.Logf("send-message: document at sent: %s", rec)
	if rec != "Commit×1" {
		t.Errorf("the sent document cost %s, want one Commit", rec)
	}
	if _, err := j.EnqueueOutbox(ctx, store.OutboxItem{RequestID: out.DocID, AccountID: testAccount, ToJID: out.ClientJID, Body: out.Body, Status: "sent"}); err != nil {
		t.Fatal(err)
	}
	claim, _ := tally.take()
	t.Logf("send-message: key claimed in the outbox: %s", claim)

	// While Firestore answers, live messages are written to it directly:
	// nothing was committed to the journal (no local fsync per message).
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var entries int
	if err := db.QueryRow(`SELECT COUNT(*) FROM entries`).Scan(&entries); err != nil || entries != 0 {
		t.Errorf("journal entries after direct writes: %d (%v), want 0", entries, err)
	}

	// Exactly once: 5 documents, 5 mappings (msg 0, 50, 200, 250, the send).
	for col, want := range map[string]int{"message_ids": 5} {
		docs, err := c.Collection(col).Documents(ctx).GetAll()
		if err != nil || len(docs) != want {
			t.Fatalf("%s: %d documents (%v), want %d", col, len(docs), err, want)
		}
	}
	docs, err := c.Collection("threads").Doc(msg(0).ThreadID).Collection("messages").Documents(ctx).GetAll()
	if err != nil || len(docs) != 5 {
		t.Fatalf("messages: %d documents (%v), want 5", len(docs), err)
	}
}
