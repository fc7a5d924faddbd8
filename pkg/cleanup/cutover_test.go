package cleanup

import (
	"context"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/internal/legacynode"
	"github.com/wactl/wactl/pkg/audit"
	"github.com/wactl/wactl/pkg/dedupe"
	"github.com/wactl/wactl/pkg/lock"
	"github.com/wactl/wactl/pkg/store"
	fsstore "github.com/wactl/wactl/pkg/store/firestore"
	"github.com/wactl/wactl/pkg/store/msgbuild"
)

// The cutover runbook (docs/operations.md, "Cutover"), executed: the old
// service (legacynode: its lock protocol at 1/50 of its timing, its
// message, thread and mapping writes, its audit) runs against the
// emulator; it is stopped the way systemd stops it (its lease is left to
// expire); wactl, with another instance id, takes the lease when it
// expires and records into the same threads with no migration. The old
// documents keep their shapes, wactl's have the same types for every field
// the app reads, WhatsApp re-deliveries and strong duplicates are
// recognised across the two writers, and the old documents are audited and
// cleaned together with wactl's.
func TestCutoverFromOldService(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, _ := fsemu.NewClient(t)
	acc := "account_prod_0123456789abcdef0123456789abcdef"
	peer := "40711222333@s.whatsapp.net"
	thread := acc + "__" + peer
	base := time.Now().Add(-2 * time.Hour).Truncate(time.Second)

	// 1. The old service is ACTIVE and writes as it did.
	oldCtx, stopOld := context.WithCancel(ctx)
	oldLock, err := legacynode.NewLock(legacynode.LockOptions{Client: c, InstanceID: "host-a", Scale: 0.02})
	if err != nil {
		t.Fatal(err)
	}
	var oldDone sync.WaitGroup
	oldDone.Go(func() { _ = oldLock.Run(oldCtx) })
	waitFor(t, "old service active", 10*time.Second, oldLock.Active)

	old := &legacynode.Messages{C: c, Now: func() time.Time { return base.Add(30 * time.Minute) }}
	in := func(id string, at time.Time, text string) legacynode.WAMessage {
		return legacynode.WAMessage{ID: id, RemoteJID: peer, PushName: "Ana", Timestamp: at.Unix(), Kind: "conversation", Text: text}
	}
	for i, m := range []legacynode.WAMessage{
		in("3EB0OLD0001", base, "Bună ziua"),
		in("3EB0OLD0002", base.Add(time.Minute), "Aveți disponibil mâine?"),
		in("3EB0OLD0003", base.Add(2*time.Minute), "Mulțumesc"),
	} {
		if p, err := old.Persist(ctx, acc, m, "realtime"); err != nil || p.Skipped || p.ThreadID != thread {
			t.Fatalf("old write %d: %+v %v", i, p, err)
		}
	}
	// The app sends through the proxy; the old service sends it and then
	// stores the WhatsApp echo as a second document.
	send := legacynode.Send{AccountID: acc, ThreadID: thread, ToJID: peer, UID: "uid-1", ClientMessageID: "c-1", Text: "Da, la ora 10"}
	reqID, err := old.ProxyQueue(ctx, send)
	if err != nil {
		t.Fatal(err)
	}
	if err := old.OutboxSent(ctx, reqID, "3EB0SENT0001"); err != nil {
		t.Fatal(err)
	}
	echo, err := old.Persist(ctx, acc, legacynode.WAMessage{ID: "3EB0SENT0001", RemoteJID: peer, FromMe: true,
		Timestamp: base.Add(30 * time.Minute).Unix(), Kind: "conversation", Text: send.Text}, "realtime")
	if err != nil || echo.Skipped {
		t.Fatalf("echo %+v %v", echo, err)
	}
	oldAudit, err := old.Audit(ctx, thread, 48*time.Hour, 500)
	if err != nil {
		t.Fatal(err)
	}
	oldDocs := messageDocs(t, c, thread)
	if len(oldDocs) != 5 || oldAudit.TotalDocs != 5 {
		t.Fatalf("old service wrote %d documents, its audit saw %+v", len(oldDocs), oldAudit)
	}

	oldThread, err := c.Collection("threads").Doc(thread).Get(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// 2. systemctl stop: SIGINT, and the deployed version leaves its lease.
	stopOld()
	oldDone.Wait()
	leaseUntil := leaseUntilMs(t, c)
	if leaseUntil == 0 {
		t.Fatal("the old service deleted its lease; 692eef65 does not")
	}

	// 3. wactl, with its own instance id, takes over when the lease expires.
	var activeAt time.Time
	var mu sync.Mutex
	wl, err := lock.NewFirestore(lock.FirestoreOptions{Client: c, InstanceID: "wactl-host-a", Host: "host-a",
		DataDir: filepath.Join(t.TempDir(), "wactl"),
		Timing:  lock.Timing{TTL: 2 * time.Second, Renew: 500 * time.Millisecond, SafetyMargin: 500 * time.Millisecond, Retry: 200 * time.Millisecond, CallTimeout: 2 * time.Second},
		Callbacks: lock.Callbacks{OnActive: func(int64) {
			mu.Lock()
			activeAt = time.Now()
			mu.Unlock()
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	wctx, stopW := context.WithCancel(ctx)
	var wDone sync.WaitGroup
	wDone.Go(func() { _ = wl.Run(wctx) })
	defer func() { stopW(); wDone.Wait() }()
	waitFor(t, "wactl active", 15*time.Second, func() bool { return wl.Status().WAMode == lock.Active })
	mu.Lock()
	took := activeAt
	mu.Unlock()
	if took.UnixMilli() < leaseUntil-250 { // 250 ms: the emulator's and this process's clocks are one clock, sampled apart
		t.Fatalf("wactl became ACTIVE at %v, before the old lease ran out at %v", took, time.UnixMilli(leaseUntil))
	}

	// 4. wactl records into the same threads: nothing migrated.
	st, err := fsstore.Open(ctx, fsstore.Options{Client: c, StrongDedupe: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	pj := types.NewJID("40711222333", types.DefaultUserServer)
	build := func(id string, at time.Time, text string) store.Message {
		t.Helper()
		r, err := msgbuild.Build(msgbuild.Input{AccountID: acc, Source: msgbuild.SourceRealtime, Event: &events.Message{
			Info:    types.MessageInfo{MessageSource: types.MessageSource{Chat: pj, Sender: pj}, ID: id, PushName: "Ana", Timestamp: at},
			Message: &waE2E.Message{Conversation: proto.String(text)}}})
		if err != nil {
			t.Fatal(err)
		}
		return r.Message
	}
	// WhatsApp re-delivers what the old service had not acknowledged.
	if o, err := st.RecordMessage(ctx, build("3EB0OLD0003", base.Add(2*time.Minute), "Mulțumesc")); err != nil || o != store.Skipped {
		t.Fatalf("re-delivery: %v %v, want skipped", o, err)
	}
	// The same message under another id (a history re-sync): the strong
	// fingerprint matches the old service's document.
	if o, err := st.RecordMessage(ctx, build("3EB0RESYNC02", base.Add(time.Minute), "Aveți disponibil mâine?")); err != nil || o != store.StrongSkipped {
		t.Fatalf("strong duplicate of an old document: %v %v, want strong_skipped", o, err)
	}
	fresh := build("3EB0NEW00001", base.Add(40*time.Minute), "Perfect, vă aștept")
	if o, err := st.RecordMessage(ctx, fresh); err != nil || o != store.Wrote {
		t.Fatalf("new message: %v %v", o, err)
	}

	// 5. The old documents are as the old service left them, and wactl's
	// document has, for every field of an old document, the same type.
	after := messageDocs(t, c, thread)
	for id, d := range oldDocs {
		if !reflect.DeepEqual(after[id], d) {
			t.Errorf("old document %s changed:\n%v\n%v", id, d, after[id])
		}
	}
	mine := after[fresh.DocID]
	ref := oldDocs[dedupe.MessageDocID(acc, "3EB0OLD0001")]
	if mine == nil || ref == nil {
		t.Fatalf("documents missing: wactl %v, old %v", mine != nil, ref != nil)
	}
	for k, v := range ref {
		if reflect.TypeOf(mine[k]) != reflect.TypeOf(v) {
			t.Errorf("field %s: old service %T, wactl %T", k, v, mine[k])
		}
	}
	td, err := c.Collection("threads").Doc(thread).Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	th := td.Data()
	if at, ok := th["lastMessageAt"].(time.Time); !ok || !at.Equal(fresh.TsClient) || th["lastMessageAtMs"] != fresh.TsClient.UnixMilli() ||
		th["lastMessageText"] != fresh.Body || th["isLidThread"] != false {
		t.Errorf("thread after wactl's message: %v", th)
	}
	for k, v := range oldThread.Data() {
		// null is a nullable field's "no value" (a fromMe message has no
		// sender name): only a value of another type changes the shape.
		if v != nil && th[k] != nil && reflect.TypeOf(th[k]) != reflect.TypeOf(v) {
			t.Errorf("thread field %s: %T as the old service left it, %T after wactl", k, v, th[k])
		}
		if _, ok := th[k]; !ok {
			t.Errorf("thread field %s removed by wactl", k)
		}
	}

	// 6. Audit and cleanup see both writers' documents together.
	sel := audit.Selection{AccountID: acc, Key: audit.KeyLegacy, Now: time.Now(), ThreadID: thread}
	sel.Window, sel.Limit = 48*time.Hour, 500
	lr, err := audit.Run(ctx, audit.NewFirestore(c), audit.Options{Selection: sel})
	if err != nil {
		t.Fatal(err)
	}
	// The old audit's numbers, plus wactl's one new document.
	if lr.TotalDocs != oldAudit.TotalDocs+1 || lr.DuplicatesCount != oldAudit.DuplicatesCount {
		t.Errorf("legacy key: %d docs / %d duplicates; the old audit saw %+v before wactl's one new document", lr.TotalDocs, lr.DuplicatesCount, oldAudit)
	}
	sel = audit.Selection{AccountID: acc, Key: audit.KeyAuto, Now: time.Now()}
	res, err := Run(ctx, audit.NewFirestore(c), Options{Selection: sel, Apply: true, Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	if res.ScannedMessages != 6 || res.Marked != 1 || len(res.SampleGroups) != 1 || res.SampleGroups[0].Canonical != reqID {
		t.Fatalf("cleanup: %+v", res)
	}
	ed := messageDocs(t, c, thread)[echo.DocID]
	if ed["isDuplicate"] != true || ed["duplicateOf"] != reqID {
		t.Fatalf("the echo is not marked a duplicate of the app's document: %v", ed)
	}
	ex, err := audit.Run(ctx, audit.NewFirestore(c), audit.Options{Selection: sel, ExcludeMarked: true})
	if err != nil || ex.DuplicatesCount != 0 || ex.TotalDocs != 5 {
		t.Fatalf("after cleanup: %+v %v", ex, err)
	}
}

func waitFor(t *testing.T, what string, d time.Duration, ok func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for !ok() {
		if time.Now().After(end) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func messageDocs(t *testing.T, c *firestore.Client, thread string) map[string]map[string]any {
	t.Helper()
	snaps, err := c.Collection("threads").Doc(thread).Collection("messages").Documents(context.Background()).GetAll()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for _, s := range snaps {
		out[s.Ref.ID] = s.Data()
	}
	return out
}

func leaseUntilMs(t *testing.T, c *firestore.Client) int64 {
	t.Helper()
	s, err := c.Doc(legacynode.DocPath).Get(context.Background())
	if err != nil {
		t.Fatalf("lease document: %v", err)
	}
	v, _ := s.Data()["leaseUntil"].(int64)
	return v
}
