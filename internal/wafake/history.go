package wafake

import (
	"bytes"
	"compress/zlib"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"google.golang.org/protobuf/proto"

	"go.mau.fi/whatsmeow"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/cbcutil"
	"go.mau.fi/whatsmeow/util/hkdfutil"
)

// History sync as the phone does it after pairing: the phone uploads each
// chunk of history (zlib-compressed HistorySync protobuf, encrypted like any
// media) and sends the companion a protocol message from the account's own
// phone carrying a HistorySyncNotification that points at the blob (the
// first, small chunk may be inline instead).
//
// Acknowledgement model: whatsmeow sends "hist_sync" and "peer_msg"
// receipts for such a notification as soon as it decrypts it, before any
// handler ran; the message receipt ("sender") follows only when the
// handlers accepted it. The fake keeps a history notification pending —
// and redelivers it on the next login — until that message receipt, so a
// test can see whether the client accepted it only once it was safe.

// mediaPathPrefix is where the fake serves uploaded media over HTTP.
const mediaPathPrefix = "/wafake/media/"

// mediaHost is the host name the fake's media_conn answer names; the test
// HTTP client dials the fake whatever the host.
const mediaHost = "mmg.wafake.test"

type historyState struct {
	mu      sync.Mutex
	media   map[string][]byte // token → encrypted file (ciphertext + mac)
	fetches map[string]int    // token → GET count
	notes   map[string]bool   // device|id of history notifications → acknowledged
	drop    bool              // RemoveMediaOnUpload
}

func (h *historyState) init() {
	if h.media == nil {
		h.media, h.fetches, h.notes = map[string][]byte{}, map[string]int{}, map[string]bool{}
	}
}

// HistoryOptions shape one history notification.
type HistoryOptions struct {
	// Inline sends the blob inside the notification
	// (InitialHistBootstrapInlinePayload) instead of as downloadable media.
	Inline bool
	// ID of the notification message; default a fresh one.
	ID string
}

// HistoryNotification is what SendHistoryNotification sent.
type HistoryNotification struct {
	ID string
	// MediaToken names the uploaded blob (empty when inline): RemoveMedia
	// takes it.
	MediaToken string
}

// SendHistoryNotification uploads hs as history media (or inlines it) and
// sends the notification to the companion device(s) of `to` from the
// account's phone. The notification stays pending until the client's
// message receipt (see the acknowledgement model above).
func (s *Server) SendHistoryNotification(ctx context.Context, to types.JID, hs *waHistorySync.HistorySync, o HistoryOptions) (HistoryNotification, error) {
	if hs.SyncType == nil {
		hs.SyncType = waHistorySync.HistorySync_INITIAL_BOOTSTRAP.Enum()
	}
	raw, err := proto.Marshal(hs)
	if err != nil {
		return HistoryNotification{}, err
	}
	var buf bytes.Buffer
	zw := zlib.NewWriter(&buf)
	_, _ = zw.Write(raw)
	if err = zw.Close(); err != nil {
		return HistoryNotification{}, err
	}
	n := &waE2E.HistorySyncNotification{
		SyncType:   waE2E.HistorySyncType(hs.GetSyncType()).Enum(),
		ChunkOrder: proto.Uint32(hs.GetChunkOrder()),
		Progress:   proto.Uint32(hs.GetProgress()),
	}
	out := HistoryNotification{ID: o.ID}
	if out.ID == "" {
		out.ID = NewMessageID()
	}
	if o.Inline {
		n.InitialHistBootstrapInlinePayload = buf.Bytes()
	} else {
		token, err := s.uploadMedia(buf.Bytes(), whatsmeow.MediaHistory, n)
		if err != nil {
			return HistoryNotification{}, err
		}
		out.MediaToken = token
	}
	msg := &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{
		Type:                    waE2E.ProtocolMessage_HISTORY_SYNC_NOTIFICATION.Enum(),
		HistorySyncNotification: n,
	}}
	plaintext, err := proto.Marshal(msg)
	if err != nil {
		return HistoryNotification{}, err
	}
	s.mu.Lock()
	a := s.accountLocked(to.User)
	phone := a.phoneDev
	targets, err := s.targetsLocked(to)
	s.mu.Unlock()
	if err != nil {
		return HistoryNotification{}, err
	}
	s.hist.mu.Lock()
	s.hist.init()
	for _, d := range targets {
		s.hist.notes[d.jid.String()+"|"+out.ID] = false
	}
	s.hist.mu.Unlock()
	err = s.sendEncrypted(ctx, phone, to, plaintext, MessageOptions{ID: out.ID}.fill(), waBinary.Attrs{"category": "peer"})
	return out, err
}

// uploadMedia encrypts plaintext as WhatsApp media of type mt, keeps it for
// download and fills the notification's media fields.
func (s *Server) uploadMedia(plaintext []byte, mt whatsmeow.MediaType, n *waE2E.HistorySyncNotification) (string, error) {
	mediaKey := make([]byte, 32)
	_, _ = rand.Read(mediaKey)
	exp := hkdfutil.SHA256(mediaKey, nil, []byte(mt), 112)
	iv, cipherKey, macKey := exp[:16], exp[16:48], exp[48:80]
	ct, err := cbcutil.Encrypt(cipherKey, iv, plaintext)
	if err != nil {
		return "", err
	}
	h := hmac.New(sha256.New, macKey)
	h.Write(iv)
	h.Write(ct)
	file := append(ct, h.Sum(nil)[:10]...)
	encSum, sum := sha256.Sum256(file), sha256.Sum256(plaintext)
	token := strings.ToLower(NewMessageID())
	s.hist.mu.Lock()
	s.hist.init()
	if !s.hist.drop {
		s.hist.media[token] = file
	}
	s.hist.mu.Unlock()
	n.MediaKey, n.FileEncSHA256, n.FileSHA256 = mediaKey, encSum[:], sum[:]
	n.FileLength = proto.Uint64(uint64(len(plaintext)))
	n.DirectPath = proto.String(mediaPathPrefix + token + "?ccb=9-4")
	return token, nil
}

// RemoveMedia deletes an uploaded blob: later downloads get 404, as when
// WhatsApp's media servers expired it.
func (s *Server) RemoveMedia(token string) {
	s.hist.mu.Lock()
	delete(s.hist.media, token)
	s.hist.mu.Unlock()
}

// RemoveMediaOnUpload makes later uploads disappear at once (every
// download of them gets 404), as if the media server expired them before
// the client came to fetch them.
func (s *Server) RemoveMediaOnUpload(on bool) {
	s.hist.mu.Lock()
	s.hist.drop = on
	s.hist.mu.Unlock()
}

// MediaFetches is how many times the blob was requested.
func (s *Server) MediaFetches(token string) int {
	s.hist.mu.Lock()
	defer s.hist.mu.Unlock()
	return s.hist.fetches[token]
}

// HistoryPending lists the history notifications sent to dev that it has
// not acknowledged with a message receipt.
func (s *Server) HistoryPending(dev types.JID) []string {
	s.hist.mu.Lock()
	defer s.hist.mu.Unlock()
	var out []string
	prefix := dev.String() + "|"
	for k, acked := range s.hist.notes {
		if !acked && strings.HasPrefix(k, prefix) {
			out = append(out, strings.TrimPrefix(k, prefix))
		}
	}
	return out
}

// HistoryAcked is how many history notifications dev acknowledged.
func (s *Server) HistoryAcked(dev types.JID) int {
	s.hist.mu.Lock()
	defer s.hist.mu.Unlock()
	n := 0
	prefix := dev.String() + "|"
	for k, acked := range s.hist.notes {
		if acked && strings.HasPrefix(k, prefix) {
			n++
		}
	}
	return n
}

// historyReceipt handles a receipt for a history notification and says
// whether id was one: only the message receipt acknowledges it.
func (s *Server) historyReceipt(dev types.JID, id, typ string) bool {
	key := dev.String() + "|" + id
	s.hist.mu.Lock()
	acked, ok := s.hist.notes[key]
	if ok && !acked && (typ == "" || typ == "sender") {
		s.hist.notes[key] = true
	}
	s.hist.mu.Unlock()
	if !ok {
		return false
	}
	if typ == "" || typ == "sender" {
		s.markDelivered(dev, id, "receipt "+typ)
	}
	return true
}

// handleMediaConn answers whatsmeow's media_conn query with the fake as the
// only media host.
func (c *conn) handleMediaConn(node *waBinary.Node) {
	c.result(node, waBinary.Node{Tag: "media_conn", Attrs: waBinary.Attrs{
		"auth": "wafake", "ttl": "3600", "auth_ttl": "3600", "max_buckets": "1",
	}, Content: []waBinary.Node{{Tag: "host", Attrs: waBinary.Attrs{"hostname": mediaHost}}}})
}

// serveMedia answers media downloads; false when r is not one.
func (s *Server) serveMedia(w http.ResponseWriter, r *http.Request) bool {
	if !strings.HasPrefix(r.URL.Path, mediaPathPrefix) {
		return false
	}
	token := strings.TrimPrefix(r.URL.Path, mediaPathPrefix)
	s.hist.mu.Lock()
	s.hist.init()
	s.hist.fetches[token]++
	file, ok := s.hist.media[token]
	s.hist.mu.Unlock()
	if !ok {
		http.Error(w, "media not found", http.StatusNotFound)
		return true
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", fmt.Sprint(len(file)))
	_, _ = w.Write(file)
	return true
}

// decryptPeerMessage decrypts a message a companion sent to its own phone
// (category "peer": an on-demand history request, an app-state key
// request), which carries one <enc> for the phone instead of participants.
func (s *Server) decryptPeerMessage(ctx context.Context, from types.JID, node *waBinary.Node, rec *SentMessage) {
	if cat, _ := node.Attrs["category"].(string); cat != "peer" {
		return
	}
	enc, ok := node.GetOptionalChildByTag("enc")
	if !ok {
		return
	}
	s.mu.Lock()
	phone := s.accountLocked(from.User).phoneDev
	s.mu.Unlock()
	if phone == nil {
		return
	}
	rec.Recipients = append(rec.Recipients, phone.jid)
	m, err := phone.decrypt(ctx, from, enc)
	if err != nil {
		rec.DecryptError = err.Error()
		return
	}
	rec.Message, rec.DecryptError = m, ""
}
