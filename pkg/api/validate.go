package api

import (
	"errors"
	"fmt"
	"strings"

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
