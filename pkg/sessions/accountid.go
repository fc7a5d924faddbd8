package sessions

import (
	"errors"
	"fmt"
	"strings"
)

// MaxAccountIDLen bounds ids so that an id always fits in one path component
// with room for the removed/ prefix.
const MaxAccountIDLen = 128

// Legacy namespaces seen in the old system's data. Their suffixes were not
// always the 32-hex hash, so they accept any short [A-Za-z0-9_-] suffix.
var legacyPrefixes = []string{"account_development_", "account_production_", "account_dev_"}

// ErrInvalidAccountID is wrapped by every ValidAccountID failure.
var ErrInvalidAccountID = errors.New("invalid account id")

// ValidAccountID reports whether id is an account id that wactl accepts as a
// directory name. Accepted forms (see legacy-contract.md, Identifiers):
//
//   - account_<namespace>_<32 lower-case hex>, namespace [a-z0-9]{1,32}
//   - account_dev_…, account_development_…, account_production_… followed by
//     1–64 characters of [A-Za-z0-9_-] (old data)
//   - 32 lower-case hex: the old system's random id for accounts without a phone
//
// Everything else is refused, so an id can never name a path outside its
// account directory.
func ValidAccountID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty", ErrInvalidAccountID)
	}
	if len(id) > MaxAccountIDLen {
		return fmt.Errorf("%w: %d characters, at most %d allowed", ErrInvalidAccountID, len(id), MaxAccountIDLen)
	}
	if isLowerHex(id, 32) {
		return nil
	}
	for _, p := range legacyPrefixes {
		if rest, ok := strings.CutPrefix(id, p); ok && len(rest) >= 1 && len(rest) <= 64 && isLegacySuffix(rest) {
			return nil
		}
	}
	rest, ok := strings.CutPrefix(id, "account_")
	if ok {
		ns, hash, found := strings.Cut(rest, "_")
		if found && len(ns) >= 1 && len(ns) <= 32 && isNamespace(ns) && isLowerHex(hash, 32) {
			return nil
		}
	}
	return fmt.Errorf("%w: %q is not account_<namespace>_<32 hex>, a legacy account_dev_/account_development_/account_production_ id, or 32 hex digits", ErrInvalidAccountID, printable(id))
}

func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func isNamespace(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z') {
			return false
		}
	}
	return true
}

func isLegacySuffix(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// printable keeps error messages one readable line whatever the input.
func printable(s string) string {
	const limit = 80
	if len(s) > limit {
		s = s[:limit] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}
