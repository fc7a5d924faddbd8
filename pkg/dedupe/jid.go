package dedupe

import (
	"strings"
	"unicode"
)

// WhatsApp JID servers the contract distinguishes.
const (
	ServerUser   = "s.whatsapp.net"
	ServerLegacy = "c.us"
	ServerGroup  = "g.us"
	ServerLID    = "lid"
)

// Peer types written to threads and messages.
const (
	PeerUser  = "user"
	PeerGroup = "group"
	PeerLID   = "lid"
)

// CanonicalJID normalises a JID as the contract says: lower-case, trimmed,
// leading "+" dropped, ":device" suffix of the user part dropped, and the
// legacy "@c.us" server renamed "@s.whatsapp.net". A string without "@" is
// only trimmed, lower-cased and stripped of "+"; turning bare numbers into
// JIDs is the caller's decision (the send route does it, a thread id must not).
func CanonicalJID(raw string) string {
	// "+ 40…" and "++40…" lose every leading plus and space alike, so the
	// result is a fixed point.
	s := strings.TrimLeftFunc(strings.ToLower(strings.TrimSpace(raw)), func(r rune) bool {
		return r == '+' || unicode.IsSpace(r)
	})
	user, server, hasServer := strings.Cut(s, "@")
	if !hasServer {
		return s
	}
	if i := strings.IndexByte(user, ':'); i >= 0 {
		user = user[:i]
	}
	if server == ServerLegacy {
		server = ServerUser
	}
	return user + "@" + server
}

// PeerType classifies a canonical JID: group (@g.us), lid (@lid), else user.
func PeerType(canonicalJID string) string {
	_, server, _ := strings.Cut(canonicalJID, "@")
	switch server {
	case ServerGroup:
		return PeerGroup
	case ServerLID:
		return PeerLID
	}
	return PeerUser
}

// JIDUser is the user part of a JID (the phone digits of a user JID).
func JIDUser(jid string) string {
	user, _, _ := strings.Cut(jid, "@")
	return user
}

// NormalizedPhone is "+digits" for a phone-number JID (@s.whatsapp.net with
// an all-digit user) and "" for anything else: groups, unresolved LIDs,
// broadcast lists, bare strings.
func NormalizedPhone(canonicalJID string) string {
	u, server, _ := strings.Cut(canonicalJID, "@")
	if server != ServerUser || u == "" {
		return ""
	}
	for i := 0; i < len(u); i++ {
		if u[i] < '0' || u[i] > '9' {
			return ""
		}
	}
	return "+" + u
}
