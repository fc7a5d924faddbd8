package audit

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"strconv"
)

// KeyStrategy chooses what makes two documents "the same message".
type KeyStrategy string

const (
	// KeyAuto takes the best key a document has: stableKeyHash, then
	// fingerprintHash, then sha1(accountId|providerMessageId), then the
	// legacy fingerprint.
	KeyAuto        KeyStrategy = "auto"
	KeyStable      KeyStrategy = "stable"
	KeyFingerprint KeyStrategy = "fingerprint"
	// KeyLegacy is the first operator script's fingerprint exactly,
	// sha1(direction|tsClientMs|sha1(body)[:8]|messageType), so numbers
	// compare with the old reports.
	KeyLegacy KeyStrategy = "legacy"
)

// ParseKeyStrategy validates a --key value.
func ParseKeyStrategy(s string) (KeyStrategy, error) {
	switch k := KeyStrategy(s); k {
	case KeyAuto, KeyStable, KeyFingerprint, KeyLegacy:
		return k, nil
	case "":
		return KeyAuto, nil
	}
	return "", fmt.Errorf("unknown key strategy %q: use auto, stable, fingerprint or legacy", s)
}

// NeedsBody says whether a document with these fields needs its body to be
// keyed; sources use it to avoid reading bodies they do not need.
func (k KeyStrategy) NeedsBody(stable, fingerprint, provider string) bool {
	switch k {
	case KeyLegacy:
		return true
	case KeyAuto:
		return stable == "" && fingerprint == "" && provider == ""
	}
	return false
}

// Names of the key kinds in keyStrategyCounts.
const (
	KindStable      = "stableKeyHash"
	KindFingerprint = "fingerprintHash"
	KindProvider    = "providerMessageId"
	KindLegacy      = "legacyFingerprint"
	KindStub        = "stub" // a receipt stub of the old system: its own group
	KindNone        = "none" // the chosen key is missing: its own group
)

// GroupKey is a 128-bit digest of (thread, key kind, key value).
type GroupKey [16]byte

// Key returns the group key of d under strategy k and the kind of key used.
func (k KeyStrategy) Key(d *Doc) (GroupKey, string) {
	switch k {
	case KeyLegacy:
		return groupKey(d.ThreadID, KindLegacy, LegacyFingerprint(d)), KindLegacy
	case KeyStable:
		if d.StableKeyHash != "" {
			return groupKey(d.ThreadID, KindStable, d.StableKeyHash), KindStable
		}
		return groupKey(d.ThreadID, KindNone, d.ID), KindNone
	case KeyFingerprint:
		if d.FingerprintHash != "" {
			return groupKey(d.ThreadID, KindFingerprint, d.FingerprintHash), KindFingerprint
		}
		return groupKey(d.ThreadID, KindNone, d.ID), KindNone
	}
	switch {
	case d.StableKeyHash != "":
		return groupKey(d.ThreadID, KindStable, d.StableKeyHash), KindStable
	case d.FingerprintHash != "":
		return groupKey(d.ThreadID, KindFingerprint, d.FingerprintHash), KindFingerprint
	case d.ProviderMessageID != "":
		return groupKey(d.ThreadID, KindProvider, sha1Hex(d.AccountID+"|"+d.ProviderMessageID)), KindProvider
	case IsStub(d):
		// Every stub has the same empty direction, type and body; the
		// legacy fingerprint would lump unrelated receipts together.
		return groupKey(d.ThreadID, KindStub, d.ID), KindStub
	}
	return groupKey(d.ThreadID, KindLegacy, LegacyFingerprint(d)), KindLegacy
}

// IsStub recognises the documents the old system created when it wrote a
// receipt under the raw WhatsApp id: no body, direction or type, no hashes.
func IsStub(d *Doc) bool {
	return d.Body == "" && d.Direction == "" && d.MessageType == "" &&
		d.StableKeyHash == "" && d.FingerprintHash == "" && d.ProviderMessageID == ""
}

// LegacyFingerprint is the first audit script's key:
// sha1(direction|tsClientMs|sha1(body)[:8]|messageType).
func LegacyFingerprint(d *Doc) string {
	ms := "unknown"
	if !d.TsClient.IsZero() {
		ms = strconv.FormatInt(d.TsClient.UnixMilli(), 10)
	}
	return sha1Hex(d.Direction + "|" + ms + "|" + sha1Hex(d.Body)[:8] + "|" + d.MessageType)
}

func sha1Hex(s string) string {
	h := sha1.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

func groupKey(thread, kind, value string) GroupKey {
	// One sha1.Sum over a stack buffer: sha1.New and the []byte
	// conversions cost four allocations per document.
	var buf [256]byte
	b := append(buf[:0], thread...)
	b = append(b, 0)
	b = append(b, kind...)
	b = append(b, 0)
	b = append(b, value...)
	sum := sha1.Sum(b)
	var k GroupKey
	copy(k[:], sum[:])
	return k
}
