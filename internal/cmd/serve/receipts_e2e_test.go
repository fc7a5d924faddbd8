package serve_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/watest"
	"github.com/wactl/wactl/pkg/api"
	"github.com/wactl/wactl/pkg/dedupe"
	"github.com/wactl/wactl/pkg/sessions"
)

// TestReceiptsMoveSentMessageToDeliveredThenRead: a message sent through
// a real `wactl serve` with POST /api/whatsapp/send-message, then the fake
// peer's delivery receipt and read receipt for its derived WhatsApp id,
// move its ONE document to delivered and then read. A late delivery
// receipt does not move it back, and a receipt for an id wactl never sent
// creates no stub document. Against the embedded store and the Firestore
// emulator.
func TestReceiptsMoveSentMessageToDeliveredThenRead(t *testing.T) {
	for _, backend := range []string{"embedded", "firestore"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			srv := wafake.Start(t)
			dataDir := t.TempDir()
			env := []string{"WACTL_API_SERVICE_TOKEN=" + token}
			if backend == "firestore" {
				_, project := fsemu.NewClient(t)
				env = append(env, "WACTL_STORE_BACKEND=firestore", "GOOGLE_CLOUD_PROJECT="+project,
					"FIRESTORE_EMULATOR_HOST="+fsemu.Host(t))
			}
			sess, err := sessions.Open(filepath.Join(dataDir, "sessions"), sessions.Options{})
			if err != nil {
				t.Fatal(err)
			}
			acct := watest.Pair(t, srv, sess, "40722000051")
			p := serve(t, srv, dataDir, env...)
			p.waitConnected(1, 20*time.Second)
			testReceipts(t, srv, p, acct)
		})
	}
}

func testReceipts(t *testing.T, srv *wafake.Server, p *proc, acct watest.Account) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	peer := types.NewJID("40788000051", types.DefaultUserServer)
	me := acct.Device.ToNonAD()
	thread := dedupe.ThreadID(acct.ID, dedupe.CanonicalJID(peer.String()))
	requestID := strings.Repeat("cd", 32)

	code, m := p.call(t, "POST", "/api/whatsapp/send-message",
		map[string]any{"accountId": acct.ID, "to": peer.User, "message": "are you there?"},
		map[string]string{"X-Request-ID": requestID})
	if code != 200 || m["queued"] == true {
		t.Fatalf("send-message: %d %v, want 200 sent at once", code, m)
	}
	waID := api.DeriveMessageID(acct.ID, requestID)
	if got := srv.SentByID(waID); len(got) != 1 {
		t.Fatalf("%d WhatsApp sends with id %s, want 1", len(got), waID)
	}
	only := func(status string) map[string]any {
		t.Helper()
		var doc map[string]any
		watest.Eventually(t, 10*time.Second, "message "+status, func() bool {
			doc = onlyMessage(t, p, acct.ID, thread)
			return doc["status"] == status
		})
		return doc
	}
	only("sent")

	if err := srv.SendReceipt(ctx, peer, me, []string{waID}, wafake.ReceiptDelivered); err != nil {
		t.Fatal(err)
	}
	doc := only("delivered")
	if doc["deliveredAt"] == nil || doc["readAt"] != nil {
		t.Fatalf("delivered document: deliveredAt %v readAt %v", doc["deliveredAt"], doc["readAt"])
	}

	if err := srv.SendReceipt(ctx, peer, me, []string{waID}, wafake.ReceiptRead); err != nil {
		t.Fatal(err)
	}
	doc = only("read")
	if doc["readAt"] == nil || doc["id"] != requestID || doc["waMessageId"] != waID || doc["direction"] != "outbound" {
		t.Fatalf("read document: %v", doc)
	}

	// A late delivery receipt, and receipts for an id wactl never sent.
	// whatsmeow handles nodes one at a time in arrival order, so once the
	// peer's message that follows them is recorded, they were handled too.
	for _, r := range []struct {
		id, typ string
	}{{waID, wafake.ReceiptDelivered}, {"3EB0000000000000000051", wafake.ReceiptDelivered}, {"3EB0000000000000000051", wafake.ReceiptRead}} {
		if err := srv.SendReceipt(ctx, peer, me, []string{r.id}, r.typ); err != nil {
			t.Fatal(err)
		}
	}
	marker, err := srv.SendFromPeer(ctx, peer, me, &waE2E.Message{Conversation: proto.String("yes")})
	if err != nil {
		t.Fatal(err)
	}
	var msgs []map[string]any
	watest.Eventually(t, 10*time.Second, "the peer's reply recorded", func() bool {
		msgs = listMessages(t, p, acct.ID, thread)
		for _, m := range msgs {
			if m["waMessageId"] == marker {
				return true
			}
		}
		return false
	})
	if len(msgs) != 2 {
		t.Fatalf("thread holds %s, want the sent message and the reply", describe(msgs))
	}
	for _, m := range msgs {
		if m["waMessageId"] == waID && m["status"] != "read" {
			t.Fatalf("a late delivery receipt moved the message back to %v", m["status"])
		}
	}
	_, th := p.call(t, "GET", "/api/whatsapp/threads/"+acct.ID, nil, nil)
	if th["count"] != 1.0 {
		t.Fatalf("threads %v, want only the peer's", th)
	}
}

// onlyMessage is the thread's one message document, failing when there
// are more (a receipt must update the document, not add a stub).
func onlyMessage(t *testing.T, p *proc, accountID, thread string) map[string]any {
	t.Helper()
	msgs := listMessages(t, p, accountID, thread)
	if len(msgs) != 1 {
		t.Fatalf("thread %s holds %s, want exactly one document", thread, describe(msgs))
	}
	return msgs[0]
}

func listMessages(t *testing.T, p *proc, accountID, thread string) []map[string]any {
	t.Helper()
	code, m := p.call(t, "GET", "/api/whatsapp/messages/"+accountID+"/"+thread+"?limit=50", nil, nil)
	if code != 200 {
		t.Fatalf("messages: %d %v", code, m)
	}
	raw, _ := m["messages"].([]any)
	out := make([]map[string]any, 0, len(raw))
	for _, r := range raw {
		out = append(out, r.(map[string]any))
	}
	return out
}

func describe(msgs []map[string]any) string {
	var s []string
	for _, m := range msgs {
		s = append(s, fmt.Sprintf("%v(wa %v, %v, %v)", m["id"], m["waMessageId"], m["direction"], m["status"]))
	}
	return fmt.Sprintf("%d documents %v", len(msgs), s)
}
