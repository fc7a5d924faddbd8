package sessions

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

const (
	metadataFile = "account.json"
	// SchemaVersion of account.json written by this package.
	SchemaVersion = 1
)

// Account is the metadata kept beside an account's device store.
type Account struct {
	SchemaVersion int        `json:"schemaVersion"`
	ID            string     `json:"accountId"`
	Name          string     `json:"name,omitempty"`
	Phone         string     `json:"phone,omitempty"`     // canonical +digits, or empty
	PairedJID     string     `json:"pairedJid,omitempty"` // device JID after pairing
	CreatedAt     time.Time  `json:"createdAt"`
	PairedAt      *time.Time `json:"pairedAt,omitempty"`
}

var (
	// ErrAccountExists is returned by Create when account.json already exists.
	ErrAccountExists = errors.New("account already exists")
	// ErrNoAccount is returned when an account's directory does not exist.
	ErrNoAccount = errors.New("no such account")
	// ErrNoMetadata is returned when the directory exists but account.json does not.
	ErrNoMetadata = errors.New("account has no account.json")
)

// NewAccount is what Create needs. ID must already be computed (and is
// checked with ValidAccountID); Phone, when given, is canonical "+digits".
type NewAccount struct {
	ID    string
	Name  string
	Phone string
}

// Create makes the account directory (0700) and writes account.json. If the
// account already has metadata it returns that account and ErrAccountExists.
// A directory without metadata (e.g. a legacy Baileys dir) is adopted: its
// existing files are left untouched.
func (s *Store) Create(n NewAccount) (*Account, error) {
	if err := ValidAccountID(n.ID); err != nil {
		return nil, err
	}
	if err := validPhone(n.Phone); err != nil {
		return nil, err
	}
	if s.pg != nil {
		return s.pg.create(s, n)
	}
	dir := s.Dir(n.ID)
	created, err := mkdirPrivate(dir)
	if err != nil {
		if created {
			_ = os.Remove(dir)
		}
		return nil, fmt.Errorf("create account dir: %w", err)
	}
	if existing, err := s.Get(n.ID); err == nil {
		return existing, fmt.Errorf("%w: %s", ErrAccountExists, n.ID)
	} else if !errors.Is(err, ErrNoMetadata) {
		return nil, err
	}
	a := &Account{
		SchemaVersion: SchemaVersion,
		ID:            n.ID,
		Name:          n.Name,
		Phone:         n.Phone,
		CreatedAt:     s.now().UTC(),
	}
	if err := s.writeMetadata(a); err != nil {
		// A directory this call made goes again (os.Remove only removes
		// it empty), so a failed add-account leaves no account behind; an
		// adopted directory stays.
		if created {
			if rerr := os.Remove(dir); rerr == nil {
				_ = syncDir(s.root)
			}
		}
		return nil, err
	}
	s.log.Info("account created", "account", n.ID)
	return a, nil
}

// Get reads an account's metadata.
func (s *Store) Get(id string) (*Account, error) {
	if err := ValidAccountID(id); err != nil {
		return nil, err
	}
	if s.pg != nil {
		return s.pg.get(id)
	}
	return readMetadata(s.Dir(id), id)
}

func readMetadata(dir, id string) (*Account, error) {
	data, err := os.ReadFile(filepath.Join(dir, metadataFile))
	if errors.Is(err, fs.ErrNotExist) {
		if _, derr := os.Stat(dir); errors.Is(derr, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s", ErrNoAccount, id)
		}
		return nil, fmt.Errorf("%w: %s", ErrNoMetadata, id)
	}
	if err != nil {
		return nil, fmt.Errorf("read metadata of %s: %w", id, err)
	}
	var a Account
	if err := json.Unmarshal(data, &a); err != nil {
		return nil, fmt.Errorf("metadata of %s (%s) is not valid JSON: %w", id, filepath.Join(dir, metadataFile), err)
	}
	if a.ID != id {
		return nil, fmt.Errorf("metadata of %s names account %q: the directory was renamed or the file copied from another account", id, printable(a.ID))
	}
	if a.SchemaVersion > SchemaVersion {
		return nil, fmt.Errorf("metadata of %s has schema version %d, newer than this wactl understands (%d): upgrade wactl", id, a.SchemaVersion, SchemaVersion)
	}
	return &a, nil
}

// Update applies fn to the account's metadata and replaces account.json
// atomically. Concurrent Updates of one account from different processes
// must be serialised by the caller (normally by holding the account lock).
func (s *Store) Update(id string, fn func(*Account) error) (*Account, error) {
	a, err := s.Get(id)
	if err != nil {
		return nil, err
	}
	if err := fn(a); err != nil {
		return nil, err
	}
	a.ID = id
	a.SchemaVersion = SchemaVersion
	if err := validPhone(a.Phone); err != nil {
		return nil, err
	}
	if err := s.writeMetadata(a); err != nil {
		return nil, err
	}
	return a, nil
}

// MarkPaired records the device JID a pairing produced.
func (s *Store) MarkPaired(id, jid string) (*Account, error) {
	return s.Update(id, func(a *Account) error {
		now := s.now().UTC()
		a.PairedJID = jid
		a.PairedAt = &now
		return nil
	})
}

// MarkUnpaired clears the pairing after a confirmed logout.
func (s *Store) MarkUnpaired(id string) (*Account, error) {
	return s.Update(id, func(a *Account) error {
		a.PairedJID = ""
		a.PairedAt = nil
		return nil
	})
}

func (s *Store) writeMetadata(a *Account) error {
	if s.pg != nil {
		return s.pg.writeMetadata(a)
	}
	data, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	if err := writeFileAtomic(filepath.Join(s.Dir(a.ID), metadataFile), data); err != nil {
		return fmt.Errorf("write metadata of %s: %w", a.ID, err)
	}
	return nil
}

// validPhone accepts "" or "+" followed by 6–15 digits (E.164 length). The
// canonicalisation itself belongs to the caller.
func validPhone(p string) error {
	if p == "" {
		return nil
	}
	digits := p[1:]
	if p[0] != '+' || len(digits) < 6 || len(digits) > 15 {
		return fmt.Errorf("phone %q is not canonical +digits (6 to 15 digits)", printable(p))
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return fmt.Errorf("phone %q is not canonical +digits (6 to 15 digits)", printable(p))
		}
	}
	return nil
}
