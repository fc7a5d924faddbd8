package serve_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/watest"
	"github.com/wactl/wactl/pkg/api"
	"github.com/wactl/wactl/pkg/dedupe"
)

const token = "test-service-token-0123456789abcdef" // 32+ characters: config validate refuses shorter

func (p *proc) call(t *testing.T, method, path string, body any, hdr map[string]string) (int, map[string]any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, p.url+path, r)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func decodeQRDataURL(t *testing.T, url string) string {
	t.Helper()
	b64, ok := strings.CutPrefix(url, "data:image/png;base64,")
	if !ok {
		t.Fatalf("not a PNG data URL: %.40q", url)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	bmp, _ := gozxing.NewBinaryBitmapFromImage(img)
	res, err := qrcode.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_PURE_BARCODE: true}) // the PNG holds only the code: pure mode reads every valid one, the finder misses ~2 %
	if err != nil {
		t.Fatalf("QR PNG does not decode: %v", err)
	}
	return res.GetText()
}

// TestAppAPIEndToEnd runs the app's flow through a real `wactl serve` in
// Firestore mode (emulator) and the fake WhatsApp server: add an account,
// the QR appears in the accounts list as a PNG data URL, the fake phone
// scans what the PNG encodes, the account connects; send-message three
// times with one request id while the app's proxy also queued the same
// request in the outbox → one WhatsApp message and one document, status
// sent; a peer's message shows in threads and inbox; 1,000 polls of the
// accounts list in 10 s are all 200.
func TestAppAPIEndToEnd(t *testing.T) {
	client, project := fsemu.NewClient(t)
	srv := wafake.Start(t)
	dataDir := t.TempDir()
	p := serve(t, srv, dataDir, "WACTL_STORE_BACKEND=firestore", "GOOGLE_CLOUD_PROJECT="+project,
		"FIRESTORE_EMULATOR_HOST="+fsemu.Host(t), "WACTL_API_SERVICE_TOKEN="+token, "WACTL_OUTBOX_INTERVAL=200ms")
	watest.Eventually(t, 30*time.Second, "ACTIVE", func() bool { m := p.health(); return m != nil && m["waMode"] == "active" })

	if code, _ := p.call(t, "GET", "/api/whatsapp/accounts", nil, map[string]string{"Authorization": ""}); code != 401 {
		t.Fatalf("no token: %d", code)
	}
	phone := "40777000001"
	code, m := p.call(t, "POST", "/api/whatsapp/add-account", map[string]any{"name": "Shop", "phone": "+" + phone}, nil)
	if code != 200 {
		t.Fatalf("add-account %d %v", code, m)
	}
	accountID := m["account"].(map[string]any)["id"].(string)

	var qr string
	watest.Eventually(t, 20*time.Second, "QR in the accounts list", func() bool {
		_, m := p.call(t, "GET", "/api/whatsapp/accounts", nil, nil)
		for _, a := range m["accounts"].([]any) {
			am := a.(map[string]any)
			if am["id"] == accountID {
				if s, _ := am["qrCode"].(string); s != "" {
					qr = decodeQRDataURL(t, s)
					return true
				}
			}
		}
		return false
	})
	ctx := context.Background()
	jid, err := srv.Scan(ctx, qr, phone)
	if err != nil {
		t.Fatalf("scan of the QR decoded from the PNG: %v", err)
	}
	p.waitConnected(1, 20*time.Second)

	// The proxy queues the request and the Cloud Function posts it, twice
	// more as retries.
	requestID := strings.Repeat("ab", 32)
	peer := types.NewJID("40788000001", types.DefaultUserServer)
	thread := dedupe.ThreadID(accountID, dedupe.CanonicalJID(peer.String()))
	_, err = client.Collection("outbox").Doc(requestID).Set(ctx, map[string]any{
		"requestId": requestID, "accountId": accountID, "toJid": peer.String(), "threadId": thread,
		"payload": map[string]any{"text": "hello from the app"}, "body": "hello from the app", "status": "queued",
		"attemptCount": 0, "nextAttemptAt": time.Now(), "createdAt": time.Now(), "updatedAt": time.Now(),
	})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var sent, dup atomic.Int32
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, m := p.call(t, "POST", "/api/whatsapp/send-message",
				map[string]any{"accountId": accountID, "to": peer.User, "message": "hello from the app"},
				map[string]string{"X-Request-ID": requestID})
			if code != 200 {
				t.Errorf("send %d %v", code, m)
			}
			if m["duplicate"] == true {
				dup.Add(1)
			} else {
				sent.Add(1)
			}
		}()
	}
	wg.Wait()
	waID := api.DeriveMessageID(accountID, requestID)
	watest.Eventually(t, 10*time.Second, "outbox item sent", func() bool {
		snap, err := client.Collection("outbox").Doc(requestID).Get(ctx)
		return err == nil && snap.Data()["status"] == "sent"
	})
	time.Sleep(500 * time.Millisecond) // a second send, if any, would be recorded by now
	if got := srv.SentByID(waID); len(got) != 1 {
		t.Fatalf("%d WhatsApp sends for one request, want 1 (%d answered sent, %d duplicate)", len(got), sent.Load(), dup.Load())
	}
	docs, err := client.Collection("threads").Doc(thread).Collection("messages").Documents(ctx).GetAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 1 || docs[0].Ref.ID != requestID || docs[0].Data()["status"] != "sent" {
		var ids []string
		for _, d := range docs {
			ids = append(ids, fmt.Sprintf("%s:%v", d.Ref.ID, d.Data()["status"]))
		}
		t.Fatalf("documents %v, want one %s with status sent", ids, requestID)
	}

	// A peer's message appears in threads and inbox.
	in := types.NewJID("40788000002", types.DefaultUserServer)
	mid, err := srv.SendFromPeer(ctx, in, jid.ToNonAD(), &waE2E.Message{Conversation: proto.String("hi shop")})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.WaitDelivered(ctx, jid, mid); err != nil {
		t.Fatal(err)
	}
	watest.Eventually(t, 10*time.Second, "message in the inbox", func() bool {
		_, m := p.call(t, "GET", "/api/whatsapp/inbox/"+accountID+"?limit=10", nil, nil)
		msgs, _ := m["messages"].([]any)
		return len(msgs) > 0 && msgs[0].(map[string]any)["body"] == "hi shop"
	})
	_, m = p.call(t, "GET", "/api/whatsapp/threads/"+accountID, nil, nil)
	if m["count"].(float64) < 2 {
		t.Fatalf("threads %v", m)
	}

	// 1,000 polls of the accounts list in well under 10 s: never 429.
	start := time.Now()
	var bad atomic.Int32
	var pw sync.WaitGroup
	for w := 0; w < 10; w++ {
		pw.Add(1)
		go func() {
			defer pw.Done()
			for i := 0; i < 100; i++ {
				if code, _ := p.call(t, "GET", "/api/whatsapp/accounts", nil, nil); code != 200 {
					bad.Add(1)
				}
			}
		}()
	}
	pw.Wait()
	if bad.Load() != 0 || time.Since(start) > 10*time.Second {
		t.Fatalf("%d of 1,000 polls failed; took %s", bad.Load(), time.Since(start))
	}
}
