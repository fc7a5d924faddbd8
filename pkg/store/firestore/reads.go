package firestore

import (
	"context"
	"fmt"
	"strings"
	"time"

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

// Listings order by time, then by document name in the same direction, so
// the composite indexes (accountId ASC, time DESC) serve them unchanged:
// Firestore appends __name__ in the direction of the last order anyway.
// A cursor is the item's time in microseconds (Firestore's precision) and
// its document path relative to the database.

func limitOr(limit int) int {
	if limit <= 0 {
		return 50
	}
	return limit
}

// after continues q strictly after cursor; valid says whether the
// cursor's document path belongs to this listing (threads/<id>,
// threads/<thread>/messages/<id>), so a foreign cursor is refused rather
// than sent to Firestore.
func (s *Store) after(q firestore.Query, cursor string, valid func(path string) bool) (firestore.Query, error) {
	if cursor == "" {
		return q, nil
	}
	us, path, err := store.DecodeCursor(cursor)
	if err != nil {
		return q, err
	}
	if !valid(path) {
		return q, fmt.Errorf("%w: not a cursor of this listing", store.ErrBadCursor)
	}
	return q.StartAfter(time.UnixMicro(us).UTC(), s.c.Doc(path)), nil
}

func cursorOf(at time.Time, ref *firestore.DocumentRef) string {
	return store.EncodeCursor(at.UnixMicro(), relPath(ref))
}

// relPath is the document's path below the database's documents root.
func relPath(ref *firestore.DocumentRef) string {
	if _, rest, ok := strings.Cut(ref.Path, "/documents/"); ok {
		return rest
	}
	return ref.Path
}

// docPath says whether p is collection/<id> with no further elements and
// an id Firestore accepts.
func docPath(p, collection string) bool {
	id, ok := strings.CutPrefix(p, collection+"/")
	return ok && id != "" && !strings.Contains(id, "/") && id != "." && id != ".." && !strings.HasPrefix(id, "__")
}

// ListThreads returns a page of an account's threads, most recent message
// first (composite index threads: accountId ASC, lastMessageAt DESC).
func (s *Store) ListThreads(ctx context.Context, accountID string, p store.Page) ([]store.Thread, error) {
	q := s.c.Collection(colThreads).Where("accountId", "==", accountID).
		OrderBy("lastMessageAt", firestore.Desc).OrderBy(firestore.DocumentID, firestore.Desc)
	q, err := s.after(q, p.After, func(path string) bool { return docPath(path, colThreads) })
	if err != nil {
		return nil, err
	}
	docs, err := q.Limit(limitOr(p.Limit)).Documents(ctx).GetAll()
	if err != nil {
		s.noteErr(err)
		return nil, fmt.Errorf("firestore: list threads of %s: %w", accountID, err)
	}
	out := make([]store.Thread, 0, len(docs))
	for _, d := range docs {
		t := decodeThread(d.Ref.ID, d.Data())
		t.Cursor = cursorOf(getTime(d.Data(), "lastMessageAt"), d.Ref)
		out = append(out, t)
	}
	return out, nil
}

// ListMessages returns a page of a thread's messages, newest first, by
// message time (tsClient).
func (s *Store) ListMessages(ctx context.Context, threadID string, p store.Page) ([]store.Message, error) {
	col := s.threadRef(threadID).Collection(colMessages)
	q := col.OrderBy("tsClient", firestore.Desc).OrderBy(firestore.DocumentID, firestore.Desc)
	prefix := colThreads + "/" + threadID + "/" + colMessages
	q, err := s.after(q, p.After, func(path string) bool { return docPath(path, prefix) })
	if err != nil {
		return nil, err
	}
	docs, err := q.Limit(limitOr(p.Limit)).Documents(ctx).GetAll()
	if err != nil {
		s.noteErr(err)
		return nil, fmt.Errorf("firestore: list messages of %s: %w", threadID, err)
	}
	out := make([]store.Message, 0, len(docs))
	for _, d := range docs {
		m := decodeMessage(threadID, d.Ref.ID, d.Data())
		m.Cursor = cursorOf(getTime(d.Data(), "tsClient"), d.Ref)
		out = append(out, m)
	}
	return out, nil
}

// Inbox is one collection-group query (composite index messages, collection
// group: accountId ASC, tsClient DESC), not a scan per thread.
func (s *Store) Inbox(ctx context.Context, accountID string, p store.Page) ([]store.Message, error) {
	q := s.c.CollectionGroup(colMessages).Where("accountId", "==", accountID).
		OrderBy("tsClient", firestore.Desc).OrderBy(firestore.DocumentID, firestore.Desc)
	q, err := s.after(q, p.After, func(path string) bool {
		tid, doc, ok := strings.Cut(strings.TrimPrefix(path, colThreads+"/"), "/")
		return ok && strings.HasPrefix(path, colThreads+"/") && docPath(colThreads+"/"+tid, colThreads) &&
			docPath(doc, colMessages)
	})
	if err != nil {
		return nil, err
	}
	docs, err := q.Limit(limitOr(p.Limit)).Documents(ctx).GetAll()
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
		m := decodeMessage(tid, d.Ref.ID, d.Data())
		m.Cursor = cursorOf(getTime(d.Data(), "tsClient"), d.Ref)
		out = append(out, m)
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
	return s.mappedMessage(ctx, snap)
}

// mappedMessage reads the document a message_ids mapping points to.
func (s *Store) mappedMessage(ctx context.Context, mapping *firestore.DocumentSnapshot) (store.Message, error) {
	d := mapping.Data()
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

// CheckSend reads the send's mapping and its key's outbox item in one
// BatchGetDocuments; the message document itself is read only when the
// mapping exists, which is a repeated request.
func (s *Store) CheckSend(ctx context.Context, accountID, waMessageID, requestID string) store.SendCheck {
	snaps, err := s.c.GetAll(ctx, []*firestore.DocumentRef{s.mappingRef(accountID, waMessageID), s.outboxRef(requestID)})
	if err != nil {
		s.noteErr(err)
		err = fmt.Errorf("firestore: read message %s and outbox %s: %w", waMessageID, requestID, err)
		return store.SendCheck{MessageErr: err, OutboxErr: err}
	}
	var c store.SendCheck
	if snaps[1].Exists() {
		c.Outbox = decodeOutbox(requestID, snaps[1].Data())
	} else {
		c.OutboxErr = store.ErrNotFound
	}
	if snaps[0].Exists() {
		c.Message, c.MessageErr = s.mappedMessage(ctx, snaps[0])
	} else {
		c.MessageErr = store.ErrNotFound
	}
	return c
}
