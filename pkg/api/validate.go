package api

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode"

	"go.mau.fi/whatsmeow/types"

	"github.com/wactl/wactl/pkg/dedupe"
)

// ValidatePhone canonicalises a phone number to "+digits" (a leading 0
// becomes countryCode, as the contract says) and checks it could be an
// E.164 number: 8 to 15 digits, only digits and common separators, a plus
// only in front.
func ValidatePhone(raw, countryCode string) (string, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return "", errors.New("phone number is empty")
	}
	if len(s) > 40 {
		return "", errors.New("phone number is longer than 40 characters")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9', c == ' ', c == '-', c == '(', c == ')', c == '.':
		case c == '+' && i == 0:
		default:
			return "", fmt.Errorf("phone number %q has a character other than digits, spaces, - ( ) . and a leading +", raw)
		}
	}
	p, err := dedupe.CanonicalPhone(s, countryCode)
	if err != nil {
		return "", errors.New("phone number has no digits")
	}
	if n := len(p) - 1; n < 8 || n > 15 {
		return "", fmt.Errorf("phone number %q has %d digits; want 8 to 15 with the country code", raw, n)
	}
	return p, nil
}

// ParseRecipient turns send-message's to/toJid into a JID: a string with
// "@" is a JID (canonicalised: @c.us → @s.whatsapp.net, device dropped) of
// a user, group or LID; without "@" it is a phone number, sent to
// digits@s.whatsapp.net.
func ParseRecipient(raw, countryCode string) (types.JID, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return types.JID{}, errors.New("recipient is empty: set to or toJid")
	}
	if len(s) > 128 {
		return types.JID{}, errors.New("recipient is longer than 128 characters")
	}
	if !strings.Contains(s, "@") {
		p, err := ValidatePhone(s, countryCode)
		if err != nil {
			return types.JID{}, err
		}
		return types.NewJID(p[1:], types.DefaultUserServer), nil
	}
	c := dedupe.CanonicalJID(s)
	user, server, _ := strings.Cut(c, "@")
	switch server {
	case types.DefaultUserServer:
		if !allDigits(user) || len(user) < 8 || len(user) > 15 {
			return types.JID{}, fmt.Errorf("JID %q: a user JID is 8 to 15 digits @s.whatsapp.net", raw)
		}
	case types.HiddenUserServer:
		if !allDigits(user) || len(user) < 5 || len(user) > 20 {
			return types.JID{}, fmt.Errorf("JID %q: a LID is digits@lid", raw)
		}
	case types.GroupServer:
		if !validGroupUser(user) {
			return types.JID{}, fmt.Errorf("JID %q: a group JID is digits or digits-digits @g.us", raw)
		}
	default:
		return types.JID{}, fmt.Errorf("JID %q: only @s.whatsapp.net, @c.us, @g.us and @lid recipients are supported", raw)
	}
	return types.NewJID(user, server), nil
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func validGroupUser(u string) bool {
	if len(u) < 5 || len(u) > 40 {
		return false
	}
	a, b, dash := strings.Cut(u, "-")
	if !allDigits(a) {
		return false
	}
	return !dash || allDigits(b)
}

// pathIDsOK answers 400 unless every id in the route's path is exactly one
// Firestore document id: an encoded '/' ("%2F") in a threadId used to reach
// sub-documents (a message read as a thread). Ids are checked before any
// handler or store sees them, so no answer echoes a long or unsafe id.
func pathIDsOK(w http.ResponseWriter, r *http.Request) bool {
	if id := r.PathValue("accountId"); id != "" && !docIDSafe(id) {
		fail(w, r, http.StatusBadRequest, "invalid_account", "accountId must be one account id (1-128 printable ASCII characters without '/')")
		return false
	}
	if id := r.PathValue("threadId"); id != "" && !docIDSafe(id) {
		fail(w, r, http.StatusBadRequest, "invalid_thread", "threadId must be one thread id (<accountId>__<jid>, 1-128 printable ASCII characters without '/')")
		return false
	}
	return true
}

// nameRuneRefused: characters an account name may not hold although they
// are not control characters: bidirectional formatting (U+202E makes
// "abc\u202Etxt.exe" display as "abcexe.txt"), line and paragraph
// separators, and the byte-order mark. Joiners stay (emoji sequences).
func nameRuneRefused(c rune) bool {
	return unicode.IsControl(c) || unicode.Is(unicode.Bidi_Control, c) ||
		unicode.In(c, unicode.Zl, unicode.Zp) || c == '\uFEFF'
}

// jsonObject refuses a body that is not a JSON object before it is
// decoded: "null" decoded into a request struct leaves it empty, and
// add-account created an unnamed account from it.
func jsonObject(rd io.Reader) (io.Reader, error) {
	br := bufio.NewReader(rd)
	for {
		c, err := br.ReadByte()
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty body: send a JSON object")
		}
		if err != nil {
			return nil, err // a body over the limit stays a *http.MaxBytesError
		}
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '{':
			_ = br.UnreadByte()
			return br, nil
		}
		return nil, errors.New("invalid JSON body: send a JSON object ({...})")
	}
}
