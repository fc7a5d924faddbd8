package daemon

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode"
	"unicode/utf8"

	"github.com/wactl/wactl/pkg/sessions"
)

// maxAdminBody caps an admin socket request: a pair request is a few
// hundred bytes.
const maxAdminBody = 64 << 10

// parsePairRequest reads one pair request from the admin socket: exactly
// one JSON object (not null, nothing after it), known fields only, a valid
// account id, a canonical phone, a printable name. The socket is local and
// 0600, but what it accepts becomes a directory name and account.json, so
// it is checked like any input.
func parsePairRequest(body io.Reader) (PairRequest, error) {
	var req PairRequest
	data, err := io.ReadAll(io.LimitReader(body, maxAdminBody+1))
	if err != nil {
		return req, fmt.Errorf("read: %w", err)
	}
	if len(data) > maxAdminBody {
		return req, fmt.Errorf("larger than %d bytes", maxAdminBody)
	}
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return req, errors.New("want one JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return PairRequest{}, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return PairRequest{}, errors.New("data after the JSON object")
	}
	if err := sessions.ValidAccountID(req.AccountID); err != nil {
		return PairRequest{}, err
	}
	if err := canonicalPhone(req.Phone); err != nil {
		return PairRequest{}, err
	}
	if err := printableName(req.Name); err != nil {
		return PairRequest{}, err
	}
	return req, nil
}

// canonicalPhone accepts "" or "+" and 6 to 15 digits, as the sessions
// store does.
func canonicalPhone(p string) error {
	if p == "" {
		return nil
	}
	bad := fmt.Errorf("phone must be + and 6 to 15 digits")
	if p[0] != '+' || len(p) < 7 || len(p) > 16 {
		return bad
	}
	for i := 1; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return bad
		}
	}
	return nil
}

func printableName(n string) error {
	if !utf8.ValidString(n) || utf8.RuneCountInString(n) > 100 {
		return errors.New("name must be valid UTF-8, at most 100 characters")
	}
	for _, r := range n {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
			return errors.New("name contains control or bidirectional formatting characters")
		}
	}
	return nil
}
