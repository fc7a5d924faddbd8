package dedupe

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"unicode/utf8"
)

// maxDocIDBytes is Firestore's limit on a document id.
const maxDocIDBytes = 1500

// hashedMappingPrefix starts the WhatsApp-id part of a hashed mapping id.
// A raw id that starts with it is hashed too, so a raw id can never look
// like the hash of another.
const hashedMappingPrefix = "sha256~"

// MappingDocID is the id of the message_ids document of a WhatsApp
// message: <accountId>__<waMessageId>, the old service's id, whenever
// Firestore can store that id as it is — valid UTF-8, no '/', at most 1,500
// bytes in all, not starting with "sha256~". Any other id becomes
// <accountId>__sha256~<64 hex of sha256(waMessageId)>.
//
// The encoding is injective for one account: raw ids map to themselves,
// hashed ones to a form no raw id takes. (The earlier '/'→'_' replacement
// made 3EB0A/1 and 3EB0A_1 share a mapping, and Firestore refused ids over
// 1,500 bytes.) Every mapping the old service could write keeps its id, so
// those are still found.
func MappingDocID(accountID, waMessageID string) string {
	if rawMappingOK(accountID, waMessageID) {
		return accountID + "__" + waMessageID
	}
	sum := sha256.Sum256([]byte(waMessageID))
	return accountID + "__" + hashedMappingPrefix + hex.EncodeToString(sum[:])
}

func rawMappingOK(accountID, wa string) bool {
	return wa != "" && len(accountID)+2+len(wa) <= maxDocIDBytes &&
		!strings.ContainsRune(wa, '/') && !strings.HasPrefix(wa, hashedMappingPrefix) &&
		utf8.ValidString(wa)
}
