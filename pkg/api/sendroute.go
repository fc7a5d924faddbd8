package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wactl/wactl/pkg/daemon"
	"github.com/wactl/wactl/pkg/dedupe"
	"github.com/wactl/wactl/pkg/store"
	"github.com/wactl/wactl/pkg/store/msgbuild"
)

type sendBody struct {
	AccountID       string `json:"accountId"`
	To              string `json:"to"`
	ToJID           string `json:"toJid"`
	Message         string `json:"message"`
	Text            string `json:"text"`
	ThreadID        string `json:"threadId"`
	ClientMessageID string `json:"clientMessageId"`
}

// parsedSend is a validated send-message request.
type parsedSend struct {
	sendRequest
	idempotent bool
}

// errBadKey is an X-Request-ID or clientMessageId that cannot be an
// idempotency key; the caller must fix it (a replaced key would split one
// logical send into two).
var errBadKey = errors.New("bad idempotency key")

const keyRules = "1-128 printable ASCII characters without '/', not '.' or '..', not __…__ and not starting with " + generatedKeyPrefix

// parseSend validates the body; headerKey is the X-Request-ID the caller
// sent ("" when none), fallbackKey the generated key of a keyless send.
func parseSend(b sendBody, headerKey, fallbackKey, countryCode string) (parsedSend, error) {
	var p parsedSend
	if headerKey != "" && !callerKeyOK(headerKey) {
		return p, fmt.Errorf("%w: X-Request-ID is the idempotency key and must be %s", errBadKey, keyRules)
	}
	if b.ClientMessageID != "" && !callerKeyOK(b.ClientMessageID) {
		return p, fmt.Errorf("%w: clientMessageId must be %s", errBadKey, keyRules)
	}
	if b.AccountID == "" || !docIDSafe(b.AccountID) {
		return p, errors.New("accountId is missing or not an account id")
	}
	to := b.To
	if b.ToJID != "" {
		if to != "" && to != b.ToJID {
			return p, errors.New("to and toJid differ: send one of them")
		}
		to = b.ToJID
	}
	jid, err := ParseRecipient(to, countryCode)
	if err != nil {
		return p, err
	}
	text := b.Message
	if b.Text != "" {
		if text != "" && text != b.Text {
			return p, errors.New("message and text differ: send one of them")
		}
		text = b.Text
	}
	if strings.TrimSpace(text) == "" {
		return p, errors.New("message is empty: set message or text")
	}
	if !utf8.ValidString(text) {
		return p, errors.New("message is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(text); n > msgbuild.MaxBodyChars {
		return p, fmt.Errorf("message has %d characters; at most %d", n, msgbuild.MaxBodyChars)
	}
	thread := dedupe.ThreadID(b.AccountID, dedupe.CanonicalJID(jid.String()))
	if b.ThreadID != "" && b.ThreadID != thread {
		return p, fmt.Errorf("threadId %s is not the thread of this recipient (%s)", quoteID(b.ThreadID), thread)
	}
	p.AccountID, p.To, p.Body, p.ClientMessageID, p.ThreadID = b.AccountID, jid, text, b.ClientMessageID, thread
	switch {
	case headerKey != "":
		p.Key, p.idempotent = headerKey, true
	case b.ClientMessageID != "":
		p.Key, p.idempotent = b.ClientMessageID, true
	default:
		p.Key = fallbackKey
	}
	return p, nil
}

// docIDSafe: usable as a Firestore document id (outbox/{key}, the message
// document) — printable ASCII, no '/', not "." or "..", not __reserved__.
func docIDSafe(s string) bool {
	if s == "" || len(s) > 128 || s == "." || s == ".." || (strings.HasPrefix(s, "__") && strings.HasSuffix(s, "__")) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == '/' {
			return false
		}
	}
	return true
}

// sendTimeout bounds waiting for the key's lock plus the send itself.
const sendTimeout = 45 * time.Second

// sendMessage: idempotent on X-Request-ID (else clientMessageId). Under
// the key's lock: a send that already happened answers duplicate; a
// connected account sends now with the derived id and records the one
// document (docId = key); otherwise the request is queued in the outbox
// for the worker.
func (a *API) sendMessage(w http.ResponseWriter, r *http.Request) {
	var b sendBody
	if !a.readBody(w, r, &b) {
		return
	}
	var q parsedSend
	header, err := headerKey(r)
	if err == nil {
		q, err = parseSend(b, header, newGeneratedKey(), a.o.CountryCode)
	}
	if errors.Is(err, errBadKey) {
		fail(w, r, http.StatusBadRequest, "invalid_request_id", strings.TrimPrefix(err.Error(), errBadKey.Error()+": "))
		return
	}
	if err != nil {
		fail(w, r, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	st, ok := a.findAccount(q.AccountID)
	if !ok {
		fail(w, r, http.StatusNotFound, "account_not_found", "no account "+q.AccountID)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), sendTimeout)
	defer cancel()
	unlock, err := a.send.locks.lock(ctx, q.Key)
	if err != nil {
		fail(w, r, http.StatusServiceUnavailable, "busy", "another send of this request id is still running; retry with the same X-Request-ID")
		return
	}
	defer unlock()

	waID := DeriveMessageID(q.AccountID, q.Key)
	base := map[string]any{"messageId": waID, "docId": q.Key, "threadId": q.ThreadID, "idempotencyKey": q.Key}
	answer := func(code int, extra map[string]any) {
		for k, v := range base {
			if _, set := extra[k]; !set {
				extra[k] = v
			}
		}
		writeJSON(w, r, code, extra)
	}
	// One store round trip before the send, not two: the message and the
	// outbox item are read together (docs/performance.md, latency).
	chk := store.CheckSend(ctx, a.d.Store, q.AccountID, waID, q.Key)
	m, done, err := sentDocument(chk.Message, chk.MessageErr)
	if err != nil {
		a.storeUnavailable(w, r, err)
		return
	}
	if why := messageDiffers(m, q.sendRequest); why != "" {
		a.keyReused(w, r, why)
		return
	}
	if done {
		answer(http.StatusOK, map[string]any{"duplicate": true, "status": m.Status, "docId": m.DocID})
		return
	}
	outboxExists := false
	it, err := chk.Outbox, chk.OutboxErr
	why := ""
	if err == nil {
		why = outboxDiffers(it, q.sendRequest, a.o.CountryCode)
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		a.storeUnavailable(w, r, err)
		return
	case why != "":
		a.keyReused(w, r, why)
		return
	case it.Status == "sent":
		answer(http.StatusOK, map[string]any{"duplicate": true, "status": "sent", "messageId": orString(it.ProviderMessageID, waID)})
		return
	case it.Status == "failed":
		answer(http.StatusOK, map[string]any{"duplicate": true, "status": "failed", "lastError": it.LastError})
		return
	default:
		outboxExists = true
		if it.ThreadID != "" {
			q.ThreadID = it.ThreadID
		}
	}

	if st.State == daemon.StateConnected {
		info, err := a.send.deliver(ctx, q.sendRequest)
		switch {
		case err == nil && q.idempotent && !outboxExists:
			a.claimKey(ctx, q, principalOf(r).UID, "sent")
		case errors.Is(err, errRecord) && !outboxExists:
			// The key's claim goes to the outbox worker as queued: it
			// writes the document without sending again (this process
			// still has the send) or, after a restart, sends again under
			// the same message id and writes it. Claimed as sent, the
			// caller's retry would find the claim and answer duplicate,
			// and nothing would ever write the document.
			a.claimKey(ctx, q, principalOf(r).UID, "queued")
		}
		switch {
		case err == nil:
			a.log.Info("message sent", "account", q.AccountID, "messageId", info.ID, "by", principalOf(r).key())
			answer(http.StatusOK, map[string]any{"status": "sent", "messageId": info.ID})
			return
		case errors.Is(err, errRecord):
			a.log.Error("message sent but not recorded", "account", q.AccountID, "messageId", info.ID, "err", err)
			msg := "WhatsApp accepted the message but its document is not written yet; retry with the same X-Request-ID (it will not be sent twice)"
			if diskFull(err) {
				msg += "; " + diskFullMsg
			}
			answer(http.StatusInternalServerError, map[string]any{"error": "record_failed", "status": "sent", "message": msg})
			return
		case errors.Is(err, ErrNotConnected):
			// Lost the connection meanwhile: queue it.
		case errors.Is(err, ErrPassive):
			a.passive(w, r)
			return
		default:
			msg := "WhatsApp refused the send: " + err.Error()
			if outboxExists {
				msg += "; the outbox item stays queued and is retried"
			}
			answer(http.StatusBadGateway, map[string]any{"error": "send_failed", "message": msg})
			return
		}
	}
	created, err := a.d.Store.EnqueueOutbox(ctx, store.OutboxItem{
		RequestID: q.Key, AccountID: q.AccountID, ToJID: q.To.String(), ThreadID: q.ThreadID,
		ClientMessageID: q.ClientMessageID, Body: q.Body, Status: "queued", NextAttemptAt: a.now(),
		CreatedByUID: principalOf(r).UID,
	})
	if err != nil {
		a.storeUnavailable(w, r, err)
		return
	}
	if created {
		// The app shows the queued message at once; the worker's send
		// later updates this same document.
		if err := a.send.record(ctx, q.sendRequest, "queued", "", a.now()); err != nil {
			a.log.Warn("queued message document not written (the worker writes it when sent)", "account", q.AccountID, "err", err)
		}
	}
	answer(http.StatusOK, map[string]any{"queued": true, "status": "queued", "duplicate": !created})
}

func orString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (a *API) storeUnavailable(w http.ResponseWriter, r *http.Request, err error) {
	a.log.Error("store unavailable", "err", err)
	if diskFull(err) {
		failDiskFull(w, r)
		return
	}
	fail(w, r, http.StatusServiceUnavailable, "store_unavailable", "the message store cannot be read right now, so the send cannot be deduplicated; retry with the same X-Request-ID")
}
