package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"go.mau.fi/whatsmeow/types"

	"github.com/wactl/wactl/pkg/store"
	"github.com/wactl/wactl/pkg/store/msgbuild"
)

// DeriveMessageID is the WhatsApp message id of the send with this
// idempotency key: whatsmeow's web format ("3EB0" + 18 upper-case hex)
// computed from the account and the key instead of at random. Every path
// that sends the request — the route, the outbox worker, a retry after a
// crash — uses the same id, so the store finds the one document by it and
// a resend after a crash between "sent" and "recorded" repeats the same
// message id, which WhatsApp clients treat as the same message.
func DeriveMessageID(accountID, key string) string {
	sum := sha256.Sum256([]byte("wactl/send/v1|" + accountID + "|" + key))
	return "3EB0" + strings.ToUpper(hex.EncodeToString(sum[:9]))
}

// sendRequest is one text to send, whichever path asked.
type sendRequest struct {
	AccountID       string
	To              types.JID
	Body            string
	Key             string // idempotency key = document id = outbox id
	ClientMessageID string
	ThreadID        string // the proxy's thread of an outbox item, if any
}

// sender sends and records, for the route and the worker alike.
type sender struct {
	wa    WhatsApp
	st    store.Store
	now   func() time.Time
	log   *slog.Logger
	locks *keyLocks

	mu sync.Mutex
	// unrecorded are sends WhatsApp accepted whose document could not be
	// written yet: a retry records them without sending again.
	unrecorded map[string]SentInfo
}

func newSender(wa WhatsApp, st store.Store, now func() time.Time, log *slog.Logger) *sender {
	return &sender{wa: wa, st: st, now: now, log: log, locks: newKeyLocks(), unrecorded: map[string]SentInfo{}}
}

// sentStatuses are the outbound states that mean WhatsApp has the message.
func sentStatus(s string) bool {
	switch s {
	case "sent", "delivered", "read", "played":
		return true
	}
	return false
}

// alreadySent finds the document of a send that happened: the message_ids
// mapping of the derived id, with a status past queued.
func (s *sender) alreadySent(ctx context.Context, accountID, waID string) (store.Message, bool, error) {
	return sentDocument(s.st.FindMessage(ctx, accountID, waID))
}

// sentDocument reads FindMessage's answer: no document is not an error,
// and done says the document is of a send that happened.
func sentDocument(m store.Message, err error) (store.Message, bool, error) {
	if errors.Is(err, store.ErrNotFound) {
		return store.Message{}, false, nil
	}
	if err != nil {
		return store.Message{}, false, err
	}
	return m, sentStatus(m.Status), nil
}

// errRecord is a send WhatsApp accepted whose document is not written.
var errRecord = errors.New("sent, but the message document could not be written")

// deliver sends q (unless this process already did) and records its
// document, status sent, under the key as document id. The caller holds
// the key's lock and has checked alreadySent.
func (s *sender) deliver(ctx context.Context, q sendRequest) (SentInfo, error) {
	waID := DeriveMessageID(q.AccountID, q.Key)
	s.mu.Lock()
	info, done := s.unrecorded[waID]
	s.mu.Unlock()
	if !done {
		var err error
		info, err = s.wa.SendText(ctx, q.AccountID, q.To, q.Body, waID)
		if err != nil {
			return SentInfo{}, err
		}
		if info.ID == "" {
			info.ID = waID
		}
		if info.Timestamp.IsZero() {
			info.Timestamp = s.now()
		}
		s.mu.Lock()
		s.unrecorded[waID] = info
		s.mu.Unlock()
	}
	if err := s.record(ctx, q, "sent", info.ID, info.Timestamp); err != nil {
		return info, fmt.Errorf("%w: %v", errRecord, err)
	}
	s.mu.Lock()
	delete(s.unrecorded, waID)
	s.mu.Unlock()
	return info, nil
}

// accepted: this process sent waID and has not written its document yet.
func (s *sender) accepted(waID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.unrecorded[waID]
	return ok
}

// record writes the outbound document (docId = the key), merging into the
// document the app's proxy created for a queued send.
func (s *sender) record(ctx context.Context, q sendRequest, status, waID string, at time.Time) error {
	m, err := msgbuild.BuildOutbound(msgbuild.Outbound{
		AccountID: q.AccountID, ToJID: q.To.String(), RequestID: q.Key, ClientMessageID: q.ClientMessageID,
		Body: q.Body, WAMessageID: waID, Status: status, At: at,
	})
	if err != nil {
		return err
	}
	if q.ThreadID != "" && strings.HasPrefix(q.ThreadID, q.AccountID+"__") && !strings.Contains(q.ThreadID, "/") {
		m.ThreadID = q.ThreadID
	}
	var last error
	for attempt := 0; attempt < 3; attempt++ {
		if attempt > 0 {
			select {
			case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if _, last = s.st.RecordMessage(ctx, m); last == nil {
			return nil
		}
	}
	return last
}
