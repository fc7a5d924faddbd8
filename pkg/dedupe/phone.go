package dedupe

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
)

// DefaultCountryCode replaces a national leading 0, as the old system did
// (Romania). Callers with other markets pass their own.
const DefaultCountryCode = "40"

// DefaultNamespace is the accountId namespace of production data.
const DefaultNamespace = "prod"

// ErrNoDigits is returned for a phone number without any digit.
var ErrNoDigits = errors.New("dedupe: phone number has no digits")

// PhoneDigits returns the canonical digits of a phone number: every
// non-digit dropped, then a single leading 0 replaced by countryCode
// (its digits; DefaultCountryCode when it has none). The rule is applied
// literally, as the old system did, so "0040…" becomes "40040…": changing
// that would move existing accounts to new ids.
func PhoneDigits(raw, countryCode string) (string, error) {
	countryCode = onlyDigits(countryCode)
	if countryCode == "" {
		countryCode = DefaultCountryCode
	}
	var b strings.Builder
	b.Grow(len(raw) + len(countryCode))
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c >= '0' && c <= '9' {
			b.WriteByte(c)
		}
	}
	d := b.String()
	if d == "" {
		return "", ErrNoDigits
	}
	if d[0] == '0' {
		d = countryCode + d[1:]
	}
	return d, nil
}

// CanonicalPhone is the contract's canonical phone: "+" and the canonical
// digits.
func CanonicalPhone(raw, countryCode string) (string, error) {
	d, err := PhoneDigits(raw, countryCode)
	if err != nil {
		return "", err
	}
	return "+" + d, nil
}

// AccountID derives the account id from a phone number:
// account_<namespace>_<first 32 hex of sha256(canonicalPhone)>.
//
// The hash input is the canonical phone as the contract writes it, WITH the
// leading "+" (e.g. "+40712345678"); the tests pin one value so a change of
// mind cannot slip through unnoticed.
func AccountID(namespace, rawPhone, countryCode string) (string, error) {
	p, err := CanonicalPhone(rawPhone, countryCode)
	if err != nil {
		return "", err
	}
	return AccountIDFromCanonical(namespace, p), nil
}

// AccountIDFromCanonical is AccountID for an already canonical "+digits"
// phone.
func AccountIDFromCanonical(namespace, canonicalPhone string) string {
	if namespace == "" {
		namespace = DefaultNamespace
	}
	sum := sha256.Sum256([]byte(canonicalPhone))
	return "account_" + namespace + "_" + hex.EncodeToString(sum[:16])
}

func onlyDigits(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= '0' && c <= '9' {
			b.WriteByte(c)
		}
	}
	return b.String()
}
