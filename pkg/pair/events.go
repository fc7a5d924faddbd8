package pair

import (
	"encoding/json"
	"io"
	"sync"
	"time"
)

// Kind is the type of an Event.
type Kind string

const (
	KindQR       Kind = "qr"        // a QR code to show until ExpiresAt
	KindPairCode Kind = "pair-code" // an XXXX-XXXX code to type on the phone
	KindScanned  Kind = "scanned"   // a phone scanned; Phone says which
	KindOutcome  Kind = "outcome"   // the last event
)

// Outcome is how a pairing ended.
type Outcome string

const (
	OutcomePaired    Outcome = "paired"
	OutcomeExpired   Outcome = "expired"   // every code timed out
	OutcomeRefused   Outcome = "refused"   // the wrong phone scanned; nothing kept
	OutcomeCancelled Outcome = "cancelled" // the context ended (Ctrl-C)
	OutcomeError     Outcome = "error"
)

// Event is one step of a pairing. Codes are secrets while they are valid:
// they go to the operator's terminal or JSON stream, never to logs.
type Event struct {
	Kind      Kind      `json:"event"`
	Code      string    `json:"code,omitempty"`
	Seq       int       `json:"seq,omitempty"` // 1-based number of this code
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
	Outcome   Outcome   `json:"outcome,omitempty"`
	Phone     string    `json:"phone,omitempty"` // "+digits" of the phone that scanned
	JID       string    `json:"jid,omitempty"`   // the new device JID when paired
	Error     string    `json:"error,omitempty"`
}

// JSONEvents returns an event sink that writes each event as one JSON line
// to w, for `wactl pair --format json`. It is safe for concurrent use and
// remembers the first write error, returned by the second function.
func JSONEvents(w io.Writer) (emit func(Event), err func() error) {
	var mu sync.Mutex
	var first error
	enc := json.NewEncoder(w)
	emit = func(e Event) {
		mu.Lock()
		defer mu.Unlock()
		if first == nil {
			first = enc.Encode(e)
		}
	}
	err = func() error {
		mu.Lock()
		defer mu.Unlock()
		return first
	}
	return emit, err
}
