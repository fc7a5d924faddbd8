package firestore

import (
	"context"
	"fmt"

	"cloud.google.com/go/firestore"

	"github.com/wactl/wactl/pkg/store"
)

// GetThread reads threads/{threadId}.
func (s *Store) GetThread(ctx context.Context, threadID string) (store.Thread, error) {
	snap, err := s.threadRef(threadID).Get(ctx)
	if isNotFound(err) {
		return store.Thread{}, store.ErrNotFound
	}
	if err != nil {
		s.noteErr(err)
		return store.Thread{}, fmt.Errorf("firestore: read thread %s: %w", threadID, err)
	}
	return decodeThread(threadID, snap.Data()), nil
}

// ListThreads returns an account's threads, most recent message first
// (composite index threads: accountId ASC, lastMessageAt DESC).
func (s *Store) ListThreads(ctx context.Context, accountID string, limit int) ([]store.Thread, error) {
	q := s.c.Collection(colThreads).Where("accountId", "==", accountID).OrderBy("lastMessageAt", firestore.Desc)
	if limit > 0 {
		q = q.Limit(limit)
	}
	docs, err := q.Documents(ctx).GetAll()
	if err != nil {
		s.noteErr(err)
		return nil, fmt.Errorf("firestore: list threads of %s: %w", accountID, err)
	}
	out := make([]store.Thread, 0, len(docs))
	for _, d := range docs {
		out = append(out, decodeThread(d.Ref.ID, d.Data()))
	}
	return out, nil
}

// ListMessages returns the newest messages of a thread, newest first, by
// message time (tsClient).
func (s *Store) ListMessages(ctx context.Context, threadID string, limit int) ([]store.Message, error) {
	q := s.threadRef(threadID).Collection(colMessages).OrderBy("tsClient", firestore.Desc)
	if limit > 0 {
		q = q.Limit(limit)
	}
	docs, err := q.Documents(ctx).GetAll()
	if err != nil {
		s.noteErr(err)
		return nil, fmt.Errorf("firestore: list messages of %s: %w", threadID, err)
	}
	out := make([]store.Message, 0, len(docs))
	for _, d := range docs {
		out = append(out, decodeMessage(threadID, d.Ref.ID, d.Data()))
	}
	return out, nil
}

// Inbox is one collection-group query (composite index messages, collection
// group: accountId ASC, tsClient DESC), not a scan per thread.
func (s *Store) Inbox(ctx context.Context, accountID string, limit int) ([]store.Message, error) {
	q := s.c.CollectionGroup(colMessages).Where("accountId", "==", accountID).OrderBy("tsClient", firestore.Desc)
	if limit > 0 {
		q = q.Limit(limit)
	}
	docs, err := q.Documents(ctx).GetAll()
	if err != nil {
		s.noteErr(err)
		return nil, fmt.Errorf("firestore: inbox of %s: %w", accountID, err)
	}
	out := make([]store.Message, 0, len(docs))
	for _, d := range docs {
		tid := ""
		if p := d.Ref.Parent.Parent; p != nil {
			tid = p.ID
		}
		out = append(out, decodeMessage(tid, d.Ref.ID, d.Data()))
	}
	return out, nil
}

// FindMessage resolves a WhatsApp id through message_ids.
func (s *Store) FindMessage(ctx context.Context, accountID, waMessageID string) (store.Message, error) {
	snap, err := s.mappingRef(accountID, waMessageID).Get(ctx)
	if isNotFound(err) {
		return store.Message{}, store.ErrNotFound
	}
	if err != nil {
		s.noteErr(err)
		return store.Message{}, fmt.Errorf("firestore: find message %s: %w", waMessageID, err)
	}
	d := snap.Data()
	tid, did := getStr(d, "threadId"), getStr(d, "docId")
	if tid == "" || did == "" {
		return store.Message{}, store.ErrNotFound
	}
	msnap, err := s.messageRef(tid, did).Get(ctx)
	if isNotFound(err) {
		return store.Message{}, store.ErrNotFound
	}
	if err != nil {
		s.noteErr(err)
		return store.Message{}, fmt.Errorf("firestore: read message %s: %w", did, err)
	}
	return decodeMessage(tid, did, msnap.Data()), nil
}
