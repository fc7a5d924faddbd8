package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/wactl/wactl/pkg/dedupe"
	"github.com/wactl/wactl/pkg/store"
)

// generatedKeyPrefix starts the keys of keyless sends. Callers may not use
// it, so a caller can never pre-claim a key the API will generate.
const generatedKeyPrefix = "gen_"

// newGeneratedKey is the key of a send without X-Request-ID or
// clientMessageId: 128 random bits, not the daemon's request id (a
// per-process prefix and a counter every answer shows).
func newGeneratedKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return generatedKeyPrefix + hex.EncodeToString(b[:])
}

// callerKeyOK: an X-Request-ID or clientMessageId usable as the key.
func callerKeyOK(s string) bool {
	return docIDSafe(s) && !strings.HasPrefix(s, generatedKeyPrefix)
}

// headerKey is the caller's X-Request-ID, "" when there is none. Several
// different values are refused rather than one picked.
func headerKey(r *http.Request) (string, error) {
	vals := r.Header.Values("X-Request-ID")
	if len(vals) == 0 {
		return "", nil
	}
	for _, v := range vals[1:] {
		if v != vals[0] {
			return "", fmt.Errorf("%w: several different X-Request-ID headers; send one", errBadKey)
		}
	}
	if vals[0] == "" {
		return "", fmt.Errorf("%w: X-Request-ID is empty; send the request's idempotency key or leave the header out", errBadKey)
	}
	return vals[0], nil
}

// messageDiffers compares the document already sent under the key on this
// account with the request; "" when it is the same request (or there is
// no document). The text is compared only while the message is unedited.
func messageDiffers(m store.Message, q sendRequest) string {
	if m.DocID == "" && m.WAMessageID == "" {
		return ""
	}
	if !sameRecipient(q, m.ThreadID, m.ClientJID, m.ResolvedJID, m.RawJID) {
		return "recipient"
	}
	if !m.Edited && !m.Revoked && m.Body != "" && m.Body != q.Body {
		return "message text"
	}
	return ""
}

// outboxDiffers compares the outbox item of the key with the request.
func outboxDiffers(it store.OutboxItem, q sendRequest, countryCode string) string {
	switch {
	case it.AccountID != "" && it.AccountID != q.AccountID:
		return "account"
	case it.ToJID != "" && !sameRecipient(q, it.ThreadID, recipientOf(it.ToJID, countryCode)):
		return "recipient"
	case it.Body != "" && it.Body != q.Body:
		return "message text"
	}
	return ""
}

func recipientOf(raw, countryCode string) string {
	if j, err := ParseRecipient(raw, countryCode); err == nil {
		return j.String()
	}
	return raw
}

// sameRecipient: the stored thread or one of the stored JIDs is q's.
func sameRecipient(q sendRequest, thread string, jids ...string) bool {
	if thread != "" && thread == q.ThreadID {
		return true
	}
	to := q.To.String()
	known := false
	for _, j := range jids {
		if j == "" {
			continue
		}
		known = true
		if dedupe.CanonicalJID(j) == to {
			return true
		}
	}
	return !known && thread == ""
}

func (a *API) keyReused(w http.ResponseWriter, r *http.Request, what string) {
	fail(w, r, http.StatusConflict, "request_id_reused",
		"this idempotency key (X-Request-ID or clientMessageId) was used for a send with another "+what+"; nothing was sent: use a new key for a new message")
}

// claimKey records a key sent directly as an outbox item, so the key of a
// send that never went through the outbox is known to every later
// request, of any account (409 instead of a second message). status is
// "sent", or "queued" for a send whose document is still to be written.
func (a *API) claimKey(ctx context.Context, q parsedSend, uid, status string) {
	_, err := a.d.Store.EnqueueOutbox(ctx, store.OutboxItem{
		RequestID: q.Key, AccountID: q.AccountID, ToJID: q.To.String(), ThreadID: q.ThreadID,
		ClientMessageID: q.ClientMessageID, Body: q.Body, Status: status, NextAttemptAt: a.now(), CreatedByUID: uid,
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		msg := "sent, but the key is not recorded in the outbox: a reuse by another account would not be refused"
		if status == "queued" {
			msg += ", and the document is written only when the caller retries"
		}
		a.log.Warn(msg, "account", q.AccountID, "err", err)
	}
}

// quoteID quotes an id for an error answer when it is short and printable;
// anything else is described, never echoed.
func quoteID(s string) string {
	if docIDSafe(s) {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("(%d bytes, not a document id)", len(s))
}
