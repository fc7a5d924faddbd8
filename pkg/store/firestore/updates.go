package firestore

import (
	"context"
	"fmt"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/wactl/wactl/pkg/store"
)

// target resolves WhatsApp ids to their one message document through the
// mapping. Ids without a mapping are left out: receipts and edits for
// messages recorded before wactl are normal, and must never create stubs.
func (s *Store) targets(ctx context.Context, accountID string, waIDs []string) ([]*firestore.DocumentRef, error) {
	refs := make([]*firestore.DocumentRef, 0, len(waIDs))
	seen := map[string]bool{}
	for _, id := range waIDs {
		r := s.mappingRef(accountID, id)
		if id == "" || seen[r.Path] {
			continue
		}
		seen[r.Path] = true
		refs = append(refs, r)
	}
	if len(refs) == 0 {
		return nil, nil
	}
	snaps, err := s.c.GetAll(ctx, refs)
	if err != nil {
		return nil, err
	}
	var out []*firestore.DocumentRef
	for _, sn := range snaps {
		if !sn.Exists() {
			continue
		}
		d := sn.Data()
		tid, did := getStr(d, "threadId"), getStr(d, "docId")
		if tid == "" || did == "" {
			continue
		}
		out = append(out, s.messageRef(tid, did))
	}
	return out, nil
}

// updateTargets applies change to each target document under a
// LastUpdateTime precondition, re-reading after a conflict. change returns
// nil when the document needs nothing.
func (s *Store) updateTargets(ctx context.Context, refs []*firestore.DocumentRef,
	change func(cur map[string]any) []firestore.Update) error {
	backoff := 5 * time.Millisecond
	for attempt := 0; ; attempt++ {
		snaps, err := s.c.GetAll(ctx, refs)
		if err != nil {
			return err
		}
		b := s.c.Batch()
		n := 0
		for _, sn := range snaps {
			if !sn.Exists() {
				continue
			}
			if up := change(sn.Data()); len(up) > 0 {
				b.Update(sn.Ref, up, firestore.LastUpdateTime(sn.UpdateTime))
				n++
			}
		}
		if n == 0 {
			return nil
		}
		_, err = b.Commit(ctx)
		if err == nil || !isConflict(err) || attempt >= 50 {
			return err
		}
		if err := waitRetry(ctx, &backoff); err != nil {
			return err
		}
	}
}

// UpdateReceipt moves the target messages to delivered or read, never back.
// Unknown ids (messages from before wactl) are ignored: nothing is written.
func (s *Store) UpdateReceipt(ctx context.Context, r store.Receipt) error {
	if r.Status != "delivered" && r.Status != "read" {
		return &PermanentError{fmt.Errorf("store: receipt status %q (want delivered or read)", r.Status)}
	}
	at := r.At
	if at.IsZero() {
		at = s.now()
	}
	for start := 0; start < len(r.WAMessageIDs); start += 400 {
		ids := r.WAMessageIDs[start:min(start+400, len(r.WAMessageIDs))]
		refs, err := s.targets(ctx, r.AccountID, ids)
		if err != nil {
			s.noteErr(err)
			return err
		}
		if len(refs) == 0 {
			continue
		}
		err = s.updateTargets(ctx, refs, func(cur map[string]any) []firestore.Update {
			if statusRank(r.Status) <= statusRank(getStr(cur, "status")) {
				return nil
			}
			up := []firestore.Update{
				{Path: "status", Value: r.Status},
				{Path: "updatedAt", Value: firestore.ServerTimestamp},
			}
			if r.Status == "read" {
				up = append(up, firestore.Update{Path: "readAt", Value: at})
				if _, ok := cur["deliveredAt"].(time.Time); !ok {
					up = append(up, firestore.Update{Path: "deliveredAt", Value: at})
				}
			} else {
				up = append(up, firestore.Update{Path: "deliveredAt", Value: at})
			}
			return up
		})
		if err != nil {
			s.noteErr(err)
			return fmt.Errorf("firestore: receipt: %w", err)
		}
	}
	return nil
}

// ApplyEdit replaces the body of the target message unless a newer edit
// of it is applied already (edits arrive in any order: history syncs bring
// old ones late), and the thread's last text when the target is the
// thread's latest message.
func (s *Store) ApplyEdit(ctx context.Context, e store.Edit) error {
	at := e.At
	if at.IsZero() {
		at = s.now()
	}
	body := truncRunes(e.NewBody, maxBody)
	refs, err := s.targets(ctx, e.AccountID, []string{e.TargetWAID})
	if err != nil {
		s.noteErr(err)
		return err
	}
	if len(refs) == 0 {
		return store.ErrNotFound
	}
	var ts time.Time
	err = s.updateTargets(ctx, refs[:1], func(cur map[string]any) []firestore.Update {
		ts = time.Time{}
		if prev := getTime(cur, "editedAt"); getBool(cur, "edited") && !prev.IsZero() && !at.After(prev) {
			return nil // not newer than the edit applied
		}
		ts = getTime(cur, "tsClient")
		return []firestore.Update{
			{Path: "body", Value: body},
			{Path: "edited", Value: true},
			{Path: "editedAt", Value: at},
			{Path: "updatedAt", Value: firestore.ServerTimestamp},
		}
	})
	if err != nil {
		s.noteErr(err)
		return fmt.Errorf("firestore: update message %s: %w", e.TargetWAID, err)
	}
	if ts.IsZero() {
		return nil
	}
	// threads/{threadId}/messages/{docId}
	if err := s.editThreadText(ctx, refs[0].Parent.Parent.ID, ts, body); err != nil {
		s.noteErr(err)
		return fmt.Errorf("firestore: thread text after edit of %s: %w", e.TargetWAID, err)
	}
	return nil
}

// editThreadText sets the thread's last text when its last message is the
// edited one (same time), under a LastUpdateTime precondition.
func (s *Store) editThreadText(ctx context.Context, threadID string, ts time.Time, body string) error {
	ref := s.threadRef(threadID)
	return s.updateTargets(ctx, []*firestore.DocumentRef{ref}, func(cur map[string]any) []firestore.Update {
		if !getTime(cur, "lastMessageAt").Equal(ts) || getStr(cur, "lastMessageText") == body {
			return nil
		}
		return []firestore.Update{
			{Path: "lastMessageText", Value: body},
			{Path: "lastMessagePreview", Value: truncRunes(body, maxPreview)},
			{Path: "updatedAt", Value: firestore.ServerTimestamp},
		}
	})
}

// ApplyRevoke marks the target message deleted for everyone. The body is
// kept: the business side audits conversations; the app shows revoked
// messages as deleted.
func (s *Store) ApplyRevoke(ctx context.Context, r store.Revoke) error {
	at := r.At
	if at.IsZero() {
		at = s.now()
	}
	return s.applyToOne(ctx, r.AccountID, r.TargetWAID, func(cur map[string]any) []firestore.Update {
		if getBool(cur, "revoked") {
			return nil
		}
		return []firestore.Update{
			{Path: "revoked", Value: true},
			{Path: "revokedAt", Value: at},
			{Path: "updatedAt", Value: firestore.ServerTimestamp},
		}
	})
}

func (s *Store) applyToOne(ctx context.Context, accountID, waID string, change func(map[string]any) []firestore.Update) error {
	refs, err := s.targets(ctx, accountID, []string{waID})
	if err != nil {
		s.noteErr(err)
		return err
	}
	if len(refs) == 0 {
		return store.ErrNotFound
	}
	if err := s.updateTargets(ctx, refs, change); err != nil {
		s.noteErr(err)
		return fmt.Errorf("firestore: update message %s: %w", waID, err)
	}
	return nil
}

// waitRetry waits *backoff, or until ctx ends, before the next try of a
// write another writer's concurrent change refused, and doubles *backoff
// up to 200 ms.
func waitRetry(ctx context.Context, backoff *time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(*backoff):
	}
	*backoff = min(*backoff*2, 200*time.Millisecond)
	return nil
}
