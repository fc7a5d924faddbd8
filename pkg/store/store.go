// Package store records WhatsApp messages, accounts, threads and outbox items.
//
// One interface, two backends: Firestore (production, the documents the
// Flutter app reads; see ../shared/reference/legacy-contract.md) and an
// embedded SQLite database (one host, zero configuration). Both enforce the
// same identity rules, so a message is stored exactly once whatever path
// delivers it and however often; the contract test suite in storetest runs
// against both.
package store

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ErrNotFound is returned when a requested document does not exist.
var ErrNotFound = errors.New("store: not found")

// ErrFenced is returned when a write carries a lease epoch older than the one
// already recorded: a stale instance must not overwrite a newer holder.
var ErrFenced = errors.New("store: fenced by a newer lease epoch")

// Outcome says what RecordMessage did with one message.
type Outcome int

const (
	Wrote         Outcome = iota // a new document was written
	Skipped                      // the same message was already recorded (dedupe.skipped)
	StrongSkipped                // another id with the same fingerprint exists (strong dedupe)
	Updated                      // an existing document was updated (receipt, edit, revoke, echo of a queued send)
)

func (o Outcome) String() string {
	switch o {
	case Wrote:
		return "wrote"
	case Skipped:
		return "skipped"
	case StrongSkipped:
		return "strong_skipped"
	case Updated:
		return "updated"
	}
	return "unknown"
}

// Message is one chat message, with the field names of the contract's
// threads/{threadId}/messages/{docId} document. Identifiers (ThreadID,
// DocID, hashes) are computed by package dedupe before the store sees it.
type Message struct {
	AccountID         string
	ThreadID          string // <accountId>__<canonicalJid>
	DocID             string // dedupe.MessageDocID, or the app's requestId for queued sends
	ClientJID         string // canonical peer JID
	ClientJIDRaw      string
	RawJID            string
	ResolvedJID       string
	NormalizedPhone   string
	PeerType          string // user | group | lid
	IsGroup           bool
	SenderJID         string
	SenderName        string
	Direction         string // inbound | outbound
	Body              string // at most 10,000 characters
	WAMessageID       string
	WAMessageIDRaw    string
	ProviderMessageID string
	ClientMessageID   string
	Status            string // delivered (inbound); queued|sent|delivered|read|failed (outbound)
	MessageType       string
	MediaType         string
	TsClient          time.Time
	Source            string // realtime | history_sync | outbound
	StableKeyHash     string
	FingerprintHash   string

	// Thread summary hints (not message fields).
	DisplayName  string
	GroupSubject string

	// Read-only, filled by reads: set by the store or by cleanup.
	CreatedAt   time.Time // server time of the first write
	IngestedAt  time.Time
	DeliveredAt time.Time
	ReadAt      time.Time
	Edited      bool
	Revoked     bool
	IsDuplicate bool
	DuplicateOf string
	// Cursor is this message's position in the listing that returned it
	// (ListMessages or Inbox): pass it as Page.After to continue after it.
	Cursor string
}

// Thread is the summary document threads/{threadId}.
type Thread struct {
	ID                    string
	AccountID             string
	ClientJID             string
	ClientJIDRaw          string
	RawJID                string
	ResolvedJID           string
	CanonicalThreadID     string
	PeerType              string
	IsGroup               bool
	LastMessageAt         time.Time
	LastMessageText       string
	LastMessagePreview    string // at most 100 characters
	LastMessageSenderName string
	LastMessageDirection  string
	DisplayName           string
	GroupSubject          string
	NormalizedPhone       string
	UpdatedAt             time.Time
	// Fields the app sets; read only here.
	Hidden     bool
	Archived   bool
	RedirectTo string
	// Cursor is this thread's position in ListThreads: pass it as
	// Page.After to continue after it.
	Cursor string
}

// Account is the accounts/{accountId} document as far as wactl owns it.
// PutAccount merges these fields; fields written by others (claimedBy,
// leaseUntil of older tools, …) are left alone.
type Account struct {
	ID                   string
	Name                 string
	PhoneE164            string
	Status               string // contract status string
	QRCode               string // data:image/png;base64,… — admin only
	QRUpdatedAt          time.Time
	PairingCode          string
	CreatedAt            time.Time
	UpdatedAt            time.Time
	WAJid                string
	LastConnectedAt      time.Time
	LastDisconnectedAt   time.Time
	LastDisconnectReason string
	LastDisconnectCode   int
	LastError            string
	LastErrorAt          time.Time
	RequiresQR           bool
	LogoutCount          int
	DeletedAt            time.Time
	Worker               Worker
	// Epoch is the lease epoch of the writer; a write with a lower epoch
	// than the stored one fails with ErrFenced. Zero disables fencing.
	Epoch int64
}

// Worker identifies the instance that last wrote an account.
type Worker struct {
	Service    string
	InstanceID string
	Version    string
	Commit     string
	Uptime     time.Duration
	BootTs     time.Time
}

// Receipt moves outbound messages to delivered or read.
type Receipt struct {
	AccountID    string
	ChatJID      string // canonical
	WAMessageIDs []string
	Status       string // delivered | read
	At           time.Time
}

// Edit replaces the body of the target message.
type Edit struct {
	AccountID  string
	ChatJID    string
	TargetWAID string
	NewBody    string
	At         time.Time
}

// Revoke marks the target message deleted for everyone.
type Revoke struct {
	AccountID  string
	ChatJID    string
	TargetWAID string
	At         time.Time
}

// HistoryResult counts one history-sync batch.
type HistoryResult struct {
	Saved, Skipped, Errors, Total int
}

// Counters are the per-account dedupe and history counters, persisted so
// they survive restarts.
type Counters struct {
	DedupeWrote         int64
	DedupeSkipped       int64
	DedupeStrongSkipped int64
	HistoryWrote        int64
	HistorySkipped      int64
	HistoryLastRunAt    time.Time
	HistoryLastBatch    int
}

// OutboxItem is outbox/{requestId}.
type OutboxItem struct {
	RequestID         string
	AccountID         string
	ToJID             string
	ThreadID          string
	ClientMessageID   string
	Body              string
	Status            string // queued | processing | sent | failed
	AttemptCount      int
	NextAttemptAt     time.Time
	CreatedAt         time.Time
	UpdatedAt         time.Time
	CreatedByUID      string
	ClaimedBy         string
	LeaseUntil        time.Time
	ClaimEpoch        int64
	ProviderMessageID string
	SentAt            time.Time
	LastError         string
	FailedAt          time.Time
}

// Health reports what /health and doctor show about the store.
type Health struct {
	Backend        string // embedded | firestore
	Reachable      bool
	LastError      string
	JournalBacklog int           // messages committed locally, not yet in Firestore
	JournalOldest  time.Duration // age of the oldest of them
	// JournalDeadLetters are journal entries Firestore refused for good,
	// kept for `wactl journal dead-letters` / `wactl journal retry`.
	JournalDeadLetters int
}

// Store is what every wactl component uses.
type Store interface {
	// RecordMessage stores one message idempotently and atomically with its
	// message_ids mapping and thread summary. A repeated delivery (same
	// account and WhatsApp id, including the echo of a send the app queued
	// under its requestId) changes nothing and returns Skipped or Updated.
	// A nil error means the message is durable.
	RecordMessage(ctx context.Context, m Message) (Outcome, error)
	// RecordHistory stores a history-sync batch with the same rules; the
	// thread summary never moves back in time.
	RecordHistory(ctx context.Context, accountID string, msgs []Message) (HistoryResult, error)
	UpdateReceipt(ctx context.Context, r Receipt) error
	ApplyEdit(ctx context.Context, e Edit) error
	ApplyRevoke(ctx context.Context, r Revoke) error

	PutAccount(ctx context.Context, a Account) error
	GetAccount(ctx context.Context, id string) (Account, error)
	ListAccounts(ctx context.Context) ([]Account, error)

	GetThread(ctx context.Context, threadID string) (Thread, error)
	// ListThreads returns an account's threads, newest lastMessageAt first.
	ListThreads(ctx context.Context, accountID string, p Page) ([]Thread, error)
	// ListMessages returns a thread's messages, newest tsClient first.
	ListMessages(ctx context.Context, threadID string, p Page) ([]Message, error)
	// Inbox returns the newest messages of an account across threads,
	// newest first, without a scan per thread.
	Inbox(ctx context.Context, accountID string, p Page) ([]Message, error)
	// FindMessage resolves a WhatsApp id through the message_ids mapping.
	FindMessage(ctx context.Context, accountID, waMessageID string) (Message, error)

	// EnqueueOutbox creates outbox/{requestId}; created is false when it
	// already existed (the item is left as it was).
	EnqueueOutbox(ctx context.Context, it OutboxItem) (created bool, err error)
	// ClaimOutbox moves up to limit due items (queued, or processing with
	// an expired claim) to processing under claimer for lease.
	ClaimOutbox(ctx context.Context, claimer string, epoch int64, lease time.Duration, limit int) ([]OutboxItem, error)
	CompleteOutbox(ctx context.Context, requestID, claimer, providerMessageID string) error
	// FailOutbox records an attempt's error; with retryAt zero the item is
	// failed for good, else it goes back to queued until retryAt.
	FailOutbox(ctx context.Context, requestID, claimer, errText string, retryAt time.Time) error
	GetOutbox(ctx context.Context, requestID string) (OutboxItem, error)

	Counters(ctx context.Context, accountID string) (Counters, error)
	Health(ctx context.Context) Health
	// Flush waits until everything recorded so far has reached the backend
	// (the Firestore journal is shipped) or ctx ends.
	Flush(ctx context.Context) error
	Close() error
}

// Page selects one page of a newest-first listing (ListThreads,
// ListMessages, Inbox). Pages are keyset pages: they continue strictly after
// the item whose Cursor is After, so items recorded newer than that item
// never shift later pages (no repeats, no gaps).
type Page struct {
	Limit int    // at most this many items; <= 0 means 50
	After string // an item's Cursor from the same listing; "" starts at the newest
}

// ErrBadCursor is returned by the listings when Page.After is not a cursor
// this backend issued for that listing.
var ErrBadCursor = errors.New("store: invalid page cursor")

// Cursors are "<position>.<key>" in unpadded base64url: the item's sort
// value (an integer time in the backend's precision) and the backend's
// tie-break key (a row number, a document path). They are opaque to
// callers; the format only has to round-trip within one backend.

// EncodeCursor is for backends: the cursor of an item at sort position pos
// with tie-break key.
func EncodeCursor(pos int64, key string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(pos, 10) + "." + key))
}

// DecodeCursor is for backends: the position and key of a cursor, or an
// error wrapping ErrBadCursor.
func DecodeCursor(c string) (int64, string, error) {
	// Strict and without the line breaks the decoder would skip: one
	// cursor, one spelling.
	b, err := base64.RawURLEncoding.Strict().DecodeString(c)
	if err != nil || strings.ContainsAny(c, "\r\n") {
		return 0, "", fmt.Errorf("%w: not base64url", ErrBadCursor)
	}
	ps, key, ok := strings.Cut(string(b), ".")
	if !ok || key == "" {
		return 0, "", fmt.Errorf("%w: no key", ErrBadCursor)
	}
	n, err := strconv.ParseInt(ps, 10, 64)
	if err != nil || strconv.FormatInt(n, 10) != ps {
		return 0, "", fmt.Errorf("%w: bad position", ErrBadCursor)
	}
	return n, key, nil
}
