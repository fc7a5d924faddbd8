package audit

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/internal/iostreams"
	"github.com/wactl/wactl/internal/legacynode"
	"github.com/wactl/wactl/pkg/audit"
	"github.com/wactl/wactl/pkg/audit/audittest"
)

// The command shows what the audit read, grouped and skipped (and why), and
// the echo pairs of the old service's app sends, in text and JSON.
func TestDuplicatesOldServiceDocuments(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, _ := fsemu.NewClient(t)
	jid := audittest.ThreadA[len(audittest.Account)+2:]
	clock := now.Add(-time.Hour)
	old := &legacynode.Messages{C: c, Now: func() time.Time { return clock }}
	id, err := old.ProxyQueue(ctx, legacynode.Send{AccountID: audittest.Account, ThreadID: audittest.ThreadA, ToJID: jid, UID: "u", ClientMessageID: "c", Text: "la 10"})
	if err != nil {
		t.Fatal(err)
	}
	if err := old.OutboxSent(ctx, id, "3EB0CMD1"); err != nil {
		t.Fatal(err)
	}
	if _, err := old.Persist(ctx, audittest.Account, legacynode.WAMessage{ID: "3EB0CMD1", RemoteJID: jid, FromMe: true, Timestamp: clock.Unix(), Kind: "conversation", Text: "la 10"}, "realtime"); err != nil {
		t.Fatal(err)
	}
	// A receipt-era document with neither tsClient nor tsClientMs, and one
	// with no usable time at all.
	msgs := c.Collection("threads").Doc(audittest.ThreadA).Collection("messages")
	if _, err := msgs.Doc("created-only").Set(ctx, map[string]any{"accountId": audittest.Account, "direction": "inbound", "body": "x", "tsClient": nil, "createdAt": clock}); err != nil {
		t.Fatal(err)
	}
	if _, err := msgs.Doc("no-time").Set(ctx, map[string]any{"accountId": audittest.Account, "direction": "inbound", "body": "y", "tsClient": "n/a"}); err != nil {
		t.Fatal(err)
	}
	open := func(context.Context) (audit.Backend, error) { return audit.NewFirestore(c), nil }
	sel := SelectionFlags{Window: 48 * time.Hour, Limit: 500, Key: "auto", EchoWindow: audit.DefaultEchoWindow}

	code, out, _ := exit(t, &Options{Open: open, Sel: sel, JSON: true})
	var rep audit.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if code != 3 || rep.TotalDocs != 3 || rep.DuplicatesCount != 1 || rep.KeyStrategyCounts[audit.KindRequestEcho] != 1 ||
		rep.TsClientShapes["createdAt"] != 1 || rep.Skipped[audit.SkipNoTime] != 1 || rep.Scanned != 4 {
		t.Fatalf("exit %d, report %s", code, out)
	}
	if !strings.Contains(out, `"skipped": {`) && !strings.Contains(out, `"skipped":{`) {
		t.Fatalf("JSON without skipped: %s", out)
	}

	ios, _, stdout, _ := iostreams.Test()
	ios.SetTTY(false, true, false)
	exit(t, &Options{IO: ios, Open: open, Sel: sel})
	if txt := stdout.String(); !strings.Contains(txt, "read 4: grouped 3, skipped noTime=1") || !strings.Contains(txt, "requestEcho=1") ||
		!strings.Contains(txt, "createdAt=1") {
		t.Fatalf("text:\n%s", txt)
	}

	// --echo-window 0 turns the pairing off.
	sel.EchoWindow = 0
	_, out, _ = exit(t, &Options{Open: open, Sel: sel, JSON: true})
	rep = audit.Report{}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.DuplicatesCount != 0 {
		t.Fatalf("echo window 0: %s %v", out, err)
	}
}
