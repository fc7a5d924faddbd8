package cleanup

import (
	"context"
	"testing"
	"time"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/internal/legacynode"
	"github.com/wactl/wactl/pkg/audit"
	"github.com/wactl/wactl/pkg/audit/audittest"
)

// The app's queued document and its echo, as the old service left them:
// cleanup marks the echo, never the document whose id the app holds, even
// though the echo was ingested... after it, and is the more complete one.
func TestFirestoreCleanupKeepsQueuedDocument(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, _ := fsemu.NewClient(t)
	jid := audittest.ThreadA[len(audittest.Account)+2:]
	clock := now.Add(-time.Hour)
	old := &legacynode.Messages{C: c, Now: func() time.Time { return clock }}
	q := legacynode.Send{AccountID: audittest.Account, ThreadID: audittest.ThreadA, ToJID: jid, UID: "u1", ClientMessageID: "c1", Text: "Vă așteptăm la 10"}
	reqID, err := old.ProxyQueue(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(30 * time.Second)
	if err := old.OutboxSent(ctx, reqID, "3EB0ECHO01"); err != nil {
		t.Fatal(err)
	}
	echo, err := old.Persist(ctx, audittest.Account, legacynode.WAMessage{ID: "3EB0ECHO01", RemoteJID: jid, FromMe: true,
		Timestamp: clock.Unix(), Kind: "conversation", Text: q.Text}, "realtime")
	if err != nil || echo.Skipped {
		t.Fatalf("echo: %+v %v", echo, err)
	}
	res, err := Run(ctx, audit.NewFirestore(c), Options{Selection: seedSel(), Apply: true, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Marked != 1 || len(res.SampleGroups) != 1 || res.SampleGroups[0].Canonical != reqID {
		t.Fatalf("cleanup: %+v", res)
	}
	msgs := c.Collection("threads").Doc(audittest.ThreadA).Collection("messages")
	e, err := msgs.Doc(echo.DocID).Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if e.Data()["isDuplicate"] != true || e.Data()["duplicateOf"] != reqID {
		t.Fatalf("echo document %v", e.Data())
	}
	a, err := msgs.Doc(reqID).Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, marked := a.Data()["isDuplicate"]; marked {
		t.Fatalf("the app's document was marked: %v", a.Data())
	}
}
