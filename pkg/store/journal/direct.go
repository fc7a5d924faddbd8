package journal

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/wactl/wactl/pkg/store"
)

// livePayload is a journaled live message with the write token its
// direct write used. Older payloads (and older wactl versions reading
// newer ones) have no token: the entry's own token, journal id and seq,
// is used then.
type livePayload struct {
	store.Message
	WriteToken string `json:"writeToken,omitempty"`
}

// directToken is the write token of one direct write: unique to this
// journal and this attempt.
func (j *Store) directToken() string {
	var b [9]byte
	_, _ = crand.Read(b[:])
	return j.id + ":d" + hex.EncodeToString(b[:])
}

// recordDirect writes m to Firestore without journaling it first. When
// Firestore does not take it, m is journaled (under the same token) and
// the failure is handled as an inline shipment's would be: an outage makes
// the journal degraded and the shipper sends m later; a refusal is
// retried by the shipper and dead-lettered if it persists; a malformed
// message is dead-lettered at once and its error returned.
func (j *Store) recordDirect(ctx context.Context, m store.Message) (store.Outcome, error) {
	token := j.directToken()
	cctx, cancel := context.WithTimeout(ctx, j.o.CallTimeout)
	out, err := j.recordToken(cctx, m, token)
	cancel()
	if err == nil {
		j.setShipErr(nil)
		return out, nil
	}
	// The message must now be durable here whatever the caller's context
	// says: it may have reached Firestore, or not.
	bctx := context.WithoutCancel(ctx)
	payload, merr := json.Marshal(&livePayload{Message: m, WriteToken: token})
	if merr != nil {
		return 0, merr
	}
	key := messageKey(&m)
	j.mu.Lock()
	seen, jerr := known(bctx, j.db, key)
	var seq int64
	if jerr == nil {
		seq, jerr = insert(bctx, j.db, kindLive, m.AccountID, key, payload, j.nowMs())
	}
	j.mu.Unlock()
	if jerr != nil {
		return 0, fmt.Errorf("journal: message not recorded (Firestore: %v): %w", err, jerr)
	}
	provisional := store.Wrote
	if seen {
		provisional = store.Skipped
	}
	switch classify(err) {
	case verdictMalformed:
		if derr := j.deadLetterRange(bctx, seq, seq, codeName(err), err.Error()); derr != nil {
			j.log.Error("journal: malformed entry not dead-lettered; the shipper will", "err", derr)
		}
		return 0, err
	case verdictRefused:
		// The shipper isolates it, retries it and dead-letters it if
		// Firestore keeps refusing; Firestore itself is fine.
	default:
		j.degraded.Store(true)
		j.setShipErr(err)
		j.log.Warn("journal: Firestore write failed; continuing from the journal", "err", err)
	}
	j.kickShipper()
	j.notifyProgress()
	return provisional, nil
}

// recordToken records one live message under token.
func (j *Store) recordToken(ctx context.Context, m store.Message, token string) (store.Outcome, error) {
	if tr, ok := j.backend.(tokenRecorder); ok {
		out, err := tr.RecordMessagesTokens(ctx, []store.Message{m}, []string{token})
		if err != nil {
			return 0, err
		}
		return out[0], nil
	}
	return j.backend.RecordMessage(ctx, m)
}

// liveToken is the write token a journaled live entry ships with.
func (j *Store) liveToken(seq int64, payload []byte) string {
	var p struct {
		WriteToken string `json:"writeToken"`
	}
	if json.Unmarshal(payload, &p) == nil && p.WriteToken != "" {
		return p.WriteToken
	}
	return j.token(seq)
}
