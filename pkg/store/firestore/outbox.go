package firestore

import (
	"context"
	"fmt"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"

	"github.com/wactl/wactl/pkg/store"
)

func (s *Store) outboxRef(id string) *firestore.DocumentRef {
	return s.c.Collection(colOutbox).Doc(id)
}

// EnqueueOutbox creates outbox/{requestId} as the app's proxy would.
func (s *Store) EnqueueOutbox(ctx context.Context, it store.OutboxItem) (bool, error) {
	if it.RequestID == "" {
		return false, &PermanentError{fmt.Errorf("store: outbox item without requestId")}
	}
	now := s.now()
	status := it.Status
	if status == "" {
		status = "queued"
	}
	next := it.NextAttemptAt
	if next.IsZero() {
		next = now
	}
	d := map[string]any{
		"requestId":       it.RequestID,
		"accountId":       it.AccountID,
		"toJid":           it.ToJID,
		"threadId":        it.ThreadID,
		"clientMessageId": it.ClientMessageID,
		"payload":         map[string]any{"text": it.Body},
		"body":            it.Body,
		"status":          status,
		"attemptCount":    int64(it.AttemptCount),
		"nextAttemptAt":   next,
		"createdAt":       now,
		"updatedAt":       firestore.ServerTimestamp,
		"createdByUid":    it.CreatedByUID,
		"claimedBy":       "",
		"claimEpoch":      int64(0),
	}
	if !it.CreatedAt.IsZero() {
		d["createdAt"] = it.CreatedAt
	}
	_, err := s.outboxRef(it.RequestID).Create(ctx, d)
	if code(err) == codes.AlreadyExists {
		return false, nil
	}
	if err != nil {
		s.noteErr(err)
		return false, fmt.Errorf("firestore: enqueue outbox %s: %w", it.RequestID, err)
	}
	return true, nil
}

func decodeOutbox(id string, d map[string]any) store.OutboxItem {
	it := store.OutboxItem{
		RequestID:         id,
		AccountID:         getStr(d, "accountId"),
		ToJID:             getStr(d, "toJid"),
		ThreadID:          getStr(d, "threadId"),
		ClientMessageID:   getStr(d, "clientMessageId"),
		Body:              getStr(d, "body"),
		Status:            getStr(d, "status"),
		AttemptCount:      int(getInt(d, "attemptCount")),
		NextAttemptAt:     getTime(d, "nextAttemptAt"),
		CreatedAt:         getTime(d, "createdAt"),
		UpdatedAt:         getTime(d, "updatedAt"),
		CreatedByUID:      getStr(d, "createdByUid"),
		ClaimedBy:         getStr(d, "claimedBy"),
		LeaseUntil:        getTime(d, "leaseUntil"),
		ClaimEpoch:        getInt(d, "claimEpoch"),
		ProviderMessageID: getStr(d, "providerMessageId"),
		SentAt:            getTime(d, "sentAt"),
		LastError:         getStr(d, "lastError"),
		FailedAt:          getTime(d, "failedAt"),
	}
	if it.Body == "" {
		if p, ok := d["payload"].(map[string]any); ok {
			it.Body = getStr(p, "text")
		}
	}
	return it
}

// GetOutbox reads outbox/{requestId}.
func (s *Store) GetOutbox(ctx context.Context, requestID string) (store.OutboxItem, error) {
	snap, err := s.outboxRef(requestID).Get(ctx)
	if isNotFound(err) {
		return store.OutboxItem{}, store.ErrNotFound
	}
	if err != nil {
		s.noteErr(err)
		return store.OutboxItem{}, fmt.Errorf("firestore: read outbox %s: %w", requestID, err)
	}
	return decodeOutbox(requestID, snap.Data()), nil
}

// ClaimOutbox takes due items with one conditional write each: an item that
// changed since it was read (another claimer won) is left out, so no item
// is ever held by two claimers. Expired processing claims are taken over;
// an item last claimed under a newer epoch is not (fencing).
// Indexes: outbox (status, createdAt) and (status, leaseUntil).
func (s *Store) ClaimOutbox(ctx context.Context, claimer string, epoch int64, lease time.Duration, limit int) ([]store.OutboxItem, error) {
	if limit <= 0 {
		return nil, nil
	}
	epoch, _, err := s.heldEpoch("outbox claim", epoch)
	if err != nil {
		return nil, err
	}
	now := s.now()
	var out []store.OutboxItem
	// Losing every candidate to other claimers does not mean the queue is
	// empty: ask again (a few times) before answering "nothing".
	for round := 0; round < 5 && len(out) == 0; round++ {
		lost, err := s.claimRound(ctx, claimer, epoch, now, lease, limit, &out)
		if err != nil || lost == 0 {
			return out, err
		}
	}
	return out, nil
}

func (s *Store) claimRound(ctx context.Context, claimer string, epoch int64, now time.Time, lease time.Duration, limit int, out *[]store.OutboxItem) (lost int, err error) {
	queued, err := s.c.Collection(colOutbox).Where("status", "==", "queued").
		OrderBy("createdAt", firestore.Asc).Limit(4*limit + 16).Documents(ctx).GetAll()
	if err != nil {
		s.noteErr(err)
		return 0, fmt.Errorf("firestore: outbox query: %w", err)
	}
	expired, err := s.c.Collection(colOutbox).Where("status", "==", "processing").
		Where("leaseUntil", "<", now).OrderBy("leaseUntil", firestore.Asc).Limit(limit).Documents(ctx).GetAll()
	if err != nil {
		s.noteErr(err)
		return 0, fmt.Errorf("firestore: outbox query: %w", err)
	}
	for _, snap := range append(expired, queued...) {
		if len(*out) >= limit {
			break
		}
		d := snap.Data()
		if next := getTime(d, "nextAttemptAt"); getStr(d, "status") == "queued" && next.After(now) {
			continue
		}
		if getInt(d, "claimEpoch") > epoch {
			continue
		}
		if _, _, err := s.heldEpoch("outbox claim", epoch); err != nil {
			return lost, err // lost the lease mid-round: claim nothing more
		}
		until := now.Add(lease)
		_, err := snap.Ref.Update(ctx, []firestore.Update{
			{Path: "status", Value: "processing"},
			{Path: "claimedBy", Value: claimer},
			{Path: "claimedAt", Value: now},
			{Path: "leaseUntil", Value: until},
			{Path: "claimEpoch", Value: epoch},
			{Path: "attemptCount", Value: firestore.Increment(1)},
			{Path: "updatedAt", Value: firestore.ServerTimestamp},
		}, firestore.LastUpdateTime(snap.UpdateTime))
		if isConflict(err) {
			lost++
			continue
		}
		if err != nil {
			s.noteErr(err)
			return lost, fmt.Errorf("firestore: claim outbox %s: %w", snap.Ref.ID, err)
		}
		it := decodeOutbox(snap.Ref.ID, d)
		it.Status, it.ClaimedBy, it.LeaseUntil, it.ClaimEpoch = "processing", claimer, until, epoch
		it.AttemptCount++
		*out = append(*out, it)
	}
	return lost, nil
}

// finishOutbox applies a final or retry state, only for the current
// claimer; a claimer whose lease was taken over gets ErrFenced, and so does
// a fenced store holding no epoch or an epoch older than the claim's.
func (s *Store) finishOutbox(ctx context.Context, requestID, claimer string, done func(d map[string]any) bool, up []firestore.Update) error {
	epoch, fenced, err := s.heldEpoch("outbox "+requestID, 0)
	if err != nil {
		return err
	}
	ref := s.outboxRef(requestID)
	for attempt := 0; ; attempt++ {
		snap, err := ref.Get(ctx)
		if isNotFound(err) {
			return store.ErrNotFound
		}
		if err != nil {
			s.noteErr(err)
			return fmt.Errorf("firestore: read outbox %s: %w", requestID, err)
		}
		d := snap.Data()
		if fenced {
			if err := olderThanDoc("outbox "+requestID, epoch, getInt(d, "claimEpoch")); err != nil {
				return err
			}
		}
		if getStr(d, "claimedBy") == claimer && done(d) {
			return nil // a repeated call after a lost answer
		}
		if getStr(d, "claimedBy") != claimer || getStr(d, "status") != "processing" {
			return store.ErrFenced
		}
		_, err = ref.Update(ctx, up, firestore.LastUpdateTime(snap.UpdateTime))
		if err == nil {
			return nil
		}
		if !isConflict(err) || attempt >= 20 {
			s.noteErr(err)
			return fmt.Errorf("firestore: update outbox %s: %w", requestID, err)
		}
	}
}

// CompleteOutbox marks the item sent.
func (s *Store) CompleteOutbox(ctx context.Context, requestID, claimer, providerMessageID string) error {
	now := s.now()
	return s.finishOutbox(ctx, requestID, claimer,
		func(d map[string]any) bool {
			return getStr(d, "status") == "sent" && getStr(d, "providerMessageId") == providerMessageID
		},
		[]firestore.Update{
			{Path: "status", Value: "sent"},
			{Path: "providerMessageId", Value: providerMessageID},
			{Path: "sentAt", Value: now},
			{Path: "lastError", Value: ""},
			{Path: "updatedAt", Value: firestore.ServerTimestamp},
		})
}

// FailOutbox records an attempt's error: failed for good when retryAt is
// zero, else queued again until retryAt.
func (s *Store) FailOutbox(ctx context.Context, requestID, claimer, errText string, retryAt time.Time) error {
	now := s.now()
	up := []firestore.Update{
		{Path: "lastError", Value: errText},
		{Path: "updatedAt", Value: firestore.ServerTimestamp},
	}
	if retryAt.IsZero() {
		up = append(up,
			firestore.Update{Path: "status", Value: "failed"},
			firestore.Update{Path: "failedAt", Value: now})
	} else {
		up = append(up,
			firestore.Update{Path: "status", Value: "queued"},
			firestore.Update{Path: "nextAttemptAt", Value: retryAt},
			firestore.Update{Path: "claimedBy", Value: ""},
			firestore.Update{Path: "leaseUntil", Value: nil})
	}
	return s.finishOutbox(ctx, requestID, claimer,
		func(d map[string]any) bool {
			return retryAt.IsZero() && getStr(d, "status") == "failed" && getStr(d, "lastError") == errText
		}, up)
}
