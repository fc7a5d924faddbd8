// Package audit finds duplicate chat messages in the message store — the
// Firestore documents the app reads or the embedded SQLite database — and
// gives package cleanup what it needs to mark them.
//
// Both stores are read through Source and written through Marker, small
// interfaces that see messages as raw records (Doc) rather than
// store.Message: old documents have shapes the store never writes (tsClient
// as a string or missing, no hashes, receipt stubs named by the raw
// WhatsApp id), and the audit must count those, not choke on them.
//
// Groups never span threads. The app shows messages per thread, so marking
// a copy in one thread as the duplicate of a message in another would hide
// the only copy a chat has; scoping by thread also keeps the 32-bit
// stableKeyHash/fingerprintHash from colliding across a large store.
package audit

import "time"

// Shape says how a document carried its tsClient.
type Shape uint8

const (
	ShapeTimestamp  Shape = iota // a Timestamp, as the contract requires
	ShapeString                  // a string the old system wrote; parsed
	ShapeMissing                 // absent; the time came from tsClientMs
	ShapeUnparsable              // no usable time at all: counted, not grouped
	// Neither tsClient nor tsClientMs: the time came from the first of
	// tsServer, ingestedAt, createdAt, as the old audit script did.
	ShapeTsServer
	ShapeIngestedAt
	ShapeCreatedAt
)

func (s Shape) String() string {
	switch s {
	case ShapeTimestamp:
		return "timestamp"
	case ShapeString:
		return "string"
	case ShapeMissing:
		return "missing"
	case ShapeTsServer:
		return "tsServer"
	case ShapeIngestedAt:
		return "ingestedAt"
	case ShapeCreatedAt:
		return "createdAt"
	}
	return "unparsable"
}

// Doc is one message document as stored, reduced to what grouping and the
// choice of a canonical copy need.
type Doc struct {
	// Ref identifies the document to its Source (Resolve); Firestore uses
	// the position in the scan, SQLite the rowid.
	Ref      int64
	ThreadID string
	ID       string

	AccountID         string
	TsClient          time.Time // zero when Shape is ShapeUnparsable
	Shape             Shape
	Direction         string
	MessageType       string
	Body              string // may be left empty when the key strategy does not need it
	StableKeyHash     string
	FingerprintHash   string
	ProviderMessageID string
	WAMessageID       string

	IngestedAt   time.Time // zero when unknown
	IsDuplicate  bool
	DuplicateOf  string
	CleanupRunID string
	// PrevMark holds the mark fields the document has (Resolve fills it).
	PrevMark map[string]any
	// Completeness counts the contract fields the document has; more is a
	// better canonical copy.
	Completeness int

	// Echo pairing (see EchoRole): the role of an outbound document with a
	// body, and a hash of its normalised body. Sources that cannot tell
	// leave EchoNone.
	Echo    EchoRole
	BodyKey uint64
	// Preferred is set by Resolve on the queued document of a pair the last
	// Collect joined: the app holds its id, so it stays canonical.
	Preferred bool
}

// EchoRole is a document's part in the old service's commonest duplicate:
// the app's queued document of a send (its id is the proxy's requestId, 64
// hex) and the document the WhatsApp echo of that send got under the hashed
// id, with no key in common.
type EchoRole uint8

const (
	EchoNone   EchoRole = iota
	EchoQueued          // outbound, id shaped like a requestId
	EchoEcho            // outbound, any other id
)

// Path is "<threadId>/<docId>", unique in a store.
func (d *Doc) Path() string { return d.ThreadID + "/" + d.ID }

// Selection is which messages an audit or cleanup looks at: the newest
// Limit by tsClient within Window before Now, of one thread, one account,
// or all.
type Selection struct {
	Window    time.Duration // 0: no time bound
	Limit     int           // 0: no limit
	AccountID string
	ThreadID  string
	Key       KeyStrategy
	Now       time.Time
	// EchoWindow bounds how long after a queued document its echo may be
	// written to be paired with it (auto key only); 0 means
	// DefaultEchoWindow, negative disables the pairing.
	EchoWindow time.Duration
}

// DefaultEchoWindow covers the old service's outbox retries (backoff up to
// a minute, a few attempts) with room to spare, and is short enough that
// the same text sent twice on purpose minutes apart stays two messages.
const DefaultEchoWindow = 10 * time.Minute

// echoWindow is the effective window, 0 when the pairing is off.
func (s Selection) echoWindow() time.Duration {
	switch {
	case s.EchoWindow < 0:
		return 0
	case s.EchoWindow == 0:
		return DefaultEchoWindow
	}
	return s.EchoWindow
}

// Since is the oldest tsClient the selection takes (zero without a window).
func (s Selection) Since() time.Time {
	if s.Window <= 0 {
		return time.Time{}
	}
	return s.Now.Add(-s.Window)
}
