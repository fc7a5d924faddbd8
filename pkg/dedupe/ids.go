package dedupe

import (
	"crypto/sha1"
	"encoding/hex"
	"strconv"
	"strings"
)

// ThreadID is <accountId>__<canonicalJid>.
func ThreadID(accountID, canonicalJID string) string {
	return accountID + "__" + canonicalJID
}

// ThreadPrefix is what every thread id of the account starts with; the
// messages route rejects thread ids without it.
func ThreadPrefix(accountID string) string { return accountID + "__" }

// MessageDocID is the document id of a WhatsApp message: the first 24 hex of
// sha1("<accountId>|<waMessageId>").
func MessageDocID(accountID, waMessageID string) string {
	return sha1Hex(accountID + "|" + waMessageID)[:24]
}

// IsMessageDocID reports whether docID is MessageDocID(accountID,
// waMessageID), without allocating: the embedded store asks it for every
// message of a history sync.
func IsMessageDocID(docID, accountID, waMessageID string) bool {
	if len(docID) != 24 {
		return false
	}
	var in [256]byte
	b := append(append(append(in[:0], accountID...), '|'), waMessageID...)
	sum := sha1.Sum(b)
	var h [40]byte
	hex.Encode(h[:], sum[:])
	return string(h[:24]) == docID
}

// MappingID is the id of message_ids/{…}: <accountId>__<waMessageId> where
// Firestore takes that id as it is, else a hash; see MappingDocID.
func MappingID(accountID, waMessageID string) string {
	return MappingDocID(accountID, waMessageID)
}

// StableKey is <accountId>|<canonicalJid>|<waMessageId>|<fromMe 1/0>|<participant>.
func StableKey(accountID, canonicalJID, waMessageID string, fromMe bool, participant string) string {
	fm := "0"
	if fromMe {
		fm = "1"
	}
	return strings.Join([]string{accountID, canonicalJID, waMessageID, fm, participant}, "|")
}

// StableKeyHash is the first 8 hex of sha1(stableKey).
func StableKeyHash(stableKey string) string { return sha1Hex(stableKey)[:8] }

// Fingerprint is the strong fingerprint, the full sha1 hex of
// <canonicalJid>|<direction>|<senderJid>|<tsClientMs or "unknown">|<messageType>|<first 8 hex of sha1(normalizedText)>.
// tsClientMs <= 0 means the time is unknown. text is normalised here.
func Fingerprint(canonicalJID, direction, senderJID string, tsClientMs int64, messageType, text string) string {
	ts := "unknown"
	if tsClientMs > 0 {
		ts = strconv.FormatInt(tsClientMs, 10)
	}
	textHash := sha1Hex(NormalizeText(text))[:8]
	return sha1Hex(strings.Join([]string{canonicalJID, direction, senderJID, ts, messageType, textHash}, "|"))
}

// FingerprintHash is the fingerprintHash field: the first 8 hex of
// sha1(fingerprint) — the old service hashed the fingerprint again.
func FingerprintHash(fingerprint string) string { return sha1Hex(fingerprint)[:8] }

// NormalizeText trims the text and collapses every run of inner whitespace
// into one ASCII space. Whitespace is exactly JavaScript's \s (the old
// system did text.trim().replace(/\s+/g, " ")), so fingerprints of old
// documents stay reproducible: that set has U+FEFF and lacks U+0085, unlike
// Go's unicode.IsSpace.
func NormalizeText(s string) string {
	return strings.Join(strings.FieldsFunc(s, isJSSpace), " ")
}

func isJSSpace(r rune) bool {
	switch r {
	case '\t', '\n', '\v', '\f', '\r', ' ', 0x00A0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000, 0xFEFF:
		return true
	}
	return r >= 0x2000 && r <= 0x200A
}

func sha1Hex(s string) string {
	sum := sha1.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}
