package sessions

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
	"unicode/utf8"
)

// A snapshot is a store-agnostic copy of accounts: wactl's metadata and the
// rows of every whatsmeow table that belong to the account's device, with
// each column's logical type, so the same bytes fill an SQLite file or a
// shared PostgreSQL database. The encoding is gzip-compressed JSON; the
// backup file wraps it in age (backup_age.go).
const (
	// SnapshotFormat names the payload so a wrong file is refused early.
	SnapshotFormat = "wactl-sessions-snapshot"
	// SnapshotFormatVersion is the version of this encoding. A reader
	// refuses a newer one.
	SnapshotFormatVersion = 1
)

// ColumnType is a column's logical type, the same in every store.
type ColumnType string

const (
	ColText  ColumnType = "text"
	ColInt   ColumnType = "int"
	ColBytes ColumnType = "bytes"
	ColBool  ColumnType = "bool"
)

// Column of an exported table.
type Column struct {
	Name string     `json:"name"`
	Type ColumnType `json:"type"`
}

// Table holds the rows of one whatsmeow table for one account. Values are
// nil, string (text), int64 (int), []byte (bytes) or bool (bool), in
// Columns order; rows are ordered by the table's primary key.
type Table struct {
	Name    string   `json:"name"`
	Columns []Column `json:"columns"`
	Rows    [][]any  `json:"-"`
}

// AccountSnapshot is one account, taken in one read transaction.
type AccountSnapshot struct {
	AccountID string `json:"accountId"`
	// Metadata is account.json; nil for a session without it.
	Metadata  *Account `json:"metadata,omitempty"`
	DeviceJID string   `json:"deviceJid,omitempty"` // empty: never paired
	// WhatsmeowSchema is whatsmeow's schema version (whatsmeow_version) of
	// the store it came from; 0 when the account had no device store yet.
	WhatsmeowSchema int       `json:"whatsmeowSchema"`
	SnapshotAt      time.Time `json:"snapshotAt"`
	SourceStore     string    `json:"sourceStore"` // "sqlite", "postgres"
	Tables          []Table   `json:"tables"`
	// Digest is the SHA-256 of the tables' canonical encoding (tablesDigest):
	// a reader recomputes it, so a damaged payload is refused even when the
	// file was not encrypted, and restore compares it to what it wrote.
	Digest string `json:"digest"`
}

// Paired reports whether the snapshot holds a device.
func (a *AccountSnapshot) Paired() bool { return a.DeviceJID != "" }

// RowCount is the number of rows over all tables.
func (a *AccountSnapshot) RowCount() int {
	n := 0
	for _, t := range a.Tables {
		n += len(t.Rows)
	}
	return n
}

// Snapshot is a backup: several accounts and where they came from.
type Snapshot struct {
	Format        string            `json:"format"`
	FormatVersion int               `json:"formatVersion"`
	CreatedAt     time.Time         `json:"createdAt"`
	Instance      string            `json:"instance,omitempty"`
	WactlVersion  string            `json:"wactlVersion,omitempty"`
	Accounts      []AccountSnapshot `json:"accounts"`
}

// ErrBadSnapshot is wrapped by every decoding failure: the payload is
// damaged, truncated or not a wactl snapshot.
var ErrBadSnapshot = errors.New("not a valid wactl sessions snapshot")

// tableJSON is Table on the wire: each value tagged by its column type.
type tableJSON struct {
	Name    string              `json:"name"`
	Columns []Column            `json:"columns"`
	Rows    [][]json.RawMessage `json:"rows"`
}

// MarshalJSON encodes values by column type: text as a JSON string (or
// {"b64":…} when not valid UTF-8), int as a number, bytes as base64, bool.
func (t Table) MarshalJSON() ([]byte, error) {
	out := tableJSON{Name: t.Name, Columns: t.Columns, Rows: make([][]json.RawMessage, len(t.Rows))}
	for i, row := range t.Rows {
		if len(row) != len(t.Columns) {
			return nil, fmt.Errorf("table %s row %d has %d values for %d columns", t.Name, i, len(row), len(t.Columns))
		}
		enc := make([]json.RawMessage, len(row))
		for j, v := range row {
			b, err := encodeValue(t.Columns[j].Type, v)
			if err != nil {
				return nil, fmt.Errorf("table %s column %s: %w", t.Name, t.Columns[j].Name, err)
			}
			enc[j] = b
		}
		out.Rows[i] = enc
	}
	return json.Marshal(out)
}

// UnmarshalJSON is MarshalJSON's inverse; it refuses unknown types.
func (t *Table) UnmarshalJSON(data []byte) error {
	var in tableJSON
	if err := json.Unmarshal(data, &in); err != nil {
		return err
	}
	t.Name, t.Columns, t.Rows = in.Name, in.Columns, make([][]any, len(in.Rows))
	for i, row := range in.Rows {
		if len(row) != len(in.Columns) {
			return fmt.Errorf("table %s row %d has %d values for %d columns", in.Name, i, len(row), len(in.Columns))
		}
		vals := make([]any, len(row))
		for j, raw := range row {
			v, err := decodeValue(in.Columns[j].Type, raw)
			if err != nil {
				return fmt.Errorf("table %s row %d column %s: %w", in.Name, i, in.Columns[j].Name, err)
			}
			vals[j] = v
		}
		t.Rows[i] = vals
	}
	return nil
}

func encodeValue(typ ColumnType, v any) ([]byte, error) {
	if v == nil {
		return []byte("null"), nil
	}
	switch typ {
	case ColText:
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("text value of type %T", v)
		}
		if !utf8.ValidString(s) {
			return json.Marshal(map[string][]byte{"b64": []byte(s)})
		}
		return json.Marshal(s)
	case ColInt:
		n, ok := v.(int64)
		if !ok {
			return nil, fmt.Errorf("int value of type %T", v)
		}
		return json.Marshal(n)
	case ColBytes:
		b, ok := v.([]byte)
		if !ok {
			return nil, fmt.Errorf("bytes value of type %T", v)
		}
		return json.Marshal(b)
	case ColBool:
		b, ok := v.(bool)
		if !ok {
			return nil, fmt.Errorf("bool value of type %T", v)
		}
		return json.Marshal(b)
	}
	return nil, fmt.Errorf("unknown column type %q", typ)
}

func decodeValue(typ ColumnType, raw json.RawMessage) (any, error) {
	if string(raw) == "null" {
		return nil, nil
	}
	switch typ {
	case ColText:
		if len(raw) > 0 && raw[0] == '{' {
			var w struct {
				B64 []byte `json:"b64"`
			}
			if err := json.Unmarshal(raw, &w); err != nil {
				return nil, err
			}
			return string(w.B64), nil
		}
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	case ColInt:
		var n int64
		err := json.Unmarshal(raw, &n)
		return n, err
	case ColBytes:
		var b []byte
		err := json.Unmarshal(raw, &b)
		if b == nil && err == nil {
			b = []byte{}
		}
		return b, err
	case ColBool:
		var b bool
		err := json.Unmarshal(raw, &b)
		return b, err
	}
	return nil, fmt.Errorf("unknown column type %q (made by a newer wactl?)", typ)
}

// tablesDigest is a SHA-256 over a canonical, length-prefixed encoding of
// the tables: equal digests mean equal rows, whatever store or JSON
// spelling they came through.
func tablesDigest(tables []Table) string {
	h := sha256.New()
	var buf [8]byte
	put := func(b []byte) {
		binary.BigEndian.PutUint64(buf[:], uint64(len(b)))
		h.Write(buf[:])
		h.Write(b)
	}
	for _, t := range tables {
		put([]byte(t.Name))
		for _, c := range t.Columns {
			put([]byte(c.Name))
			put([]byte(c.Type))
		}
		binary.BigEndian.PutUint64(buf[:], uint64(len(t.Rows)))
		h.Write(buf[:])
		for _, row := range t.Rows {
			for _, v := range row {
				switch v := v.(type) {
				case nil:
					h.Write([]byte{0})
				case string:
					h.Write([]byte{1})
					put([]byte(v))
				case int64:
					h.Write([]byte{2})
					binary.BigEndian.PutUint64(buf[:], uint64(v))
					h.Write(buf[:])
				case []byte:
					h.Write([]byte{3})
					put(v)
				case bool:
					if v {
						h.Write([]byte{4, 1})
					} else {
						h.Write([]byte{4, 0})
					}
				default:
					// Unreachable for tables built by this package; make it
					// never match instead of silently hashing nothing.
					h.Write([]byte{0xff})
					put([]byte(fmt.Sprintf("%T", v)))
				}
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// seal sets the digest; called once the tables are complete.
func (a *AccountSnapshot) seal() { a.Digest = tablesDigest(a.Tables) }

// Verify recomputes the digest and checks the snapshot's own consistency.
func (a *AccountSnapshot) Verify() error {
	if err := ValidAccountID(a.AccountID); err != nil {
		return fmt.Errorf("%w: %v", ErrBadSnapshot, err)
	}
	if a.Metadata != nil && a.Metadata.ID != a.AccountID {
		return fmt.Errorf("%w: metadata of %s names account %q", ErrBadSnapshot, a.AccountID, printable(a.Metadata.ID))
	}
	if got := tablesDigest(a.Tables); got != a.Digest {
		return fmt.Errorf("%w: account %s: rows do not match their digest (the file is damaged)", ErrBadSnapshot, a.AccountID)
	}
	return nil
}

// EncodeSnapshot writes s as gzip-compressed JSON.
func EncodeSnapshot(w io.Writer, s *Snapshot) error {
	zw, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return err
	}
	if err := json.NewEncoder(zw).Encode(s); err != nil {
		return err
	}
	return zw.Close()
}

// maxSnapshotBytes bounds the decompressed payload (a session is tens of
// KiB; 50 accounts are a few MiB), so a crafted file cannot exhaust memory.
const maxSnapshotBytes = 1 << 30

// DecodeSnapshot reads what EncodeSnapshot wrote and verifies every
// account's digest. A truncated or damaged payload fails with ErrBadSnapshot.
func DecodeSnapshot(r io.Reader) (*Snapshot, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSnapshot, err)
	}
	data, err := io.ReadAll(io.LimitReader(zr, maxSnapshotBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %v (the file is truncated or damaged)", ErrBadSnapshot, err)
	}
	if len(data) > maxSnapshotBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes uncompressed", ErrBadSnapshot, int64(maxSnapshotBytes))
	}
	var s Snapshot
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSnapshot, err)
	}
	if s.Format != SnapshotFormat {
		return nil, fmt.Errorf("%w: format %q", ErrBadSnapshot, printable(s.Format))
	}
	if s.FormatVersion > SnapshotFormatVersion || s.FormatVersion < 1 {
		return nil, fmt.Errorf("%w: format version %d, this wactl reads up to %d: restore with a newer wactl", ErrBadSnapshot, s.FormatVersion, SnapshotFormatVersion)
	}
	seen := map[string]bool{}
	for i := range s.Accounts {
		a := &s.Accounts[i]
		if err := a.Verify(); err != nil {
			return nil, err
		}
		if seen[a.AccountID] {
			return nil, fmt.Errorf("%w: account %s appears twice", ErrBadSnapshot, a.AccountID)
		}
		seen[a.AccountID] = true
	}
	return &s, nil
}

// EncodeAccount and DecodeAccount carry one account on its own (the
// Firestore replica of issue 20 stores accounts one by one).
func EncodeAccount(w io.Writer, a *AccountSnapshot) error {
	return EncodeSnapshot(w, &Snapshot{Format: SnapshotFormat, FormatVersion: SnapshotFormatVersion, CreatedAt: a.SnapshotAt, Accounts: []AccountSnapshot{*a}})
}

// DecodeAccount reads one account written by EncodeAccount.
func DecodeAccount(r io.Reader) (*AccountSnapshot, error) {
	s, err := DecodeSnapshot(r)
	if err != nil {
		return nil, err
	}
	if len(s.Accounts) != 1 {
		return nil, fmt.Errorf("%w: %d accounts where one was expected", ErrBadSnapshot, len(s.Accounts))
	}
	return &s.Accounts[0], nil
}

// normalizeValue converts what a database/sql driver returned into the
// column's logical type (SQLite returns int64 for booleans and may return
// []byte for text; pgx returns bool and strings).
func normalizeValue(typ ColumnType, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch typ {
	case ColText:
		switch v := v.(type) {
		case string:
			return v, nil
		case []byte:
			return string(v), nil
		case [16]byte: // a uuid from pgx
			return formatUUID(v), nil
		}
	case ColInt:
		switch v := v.(type) {
		case int64:
			return v, nil
		case int32:
			return int64(v), nil
		case float64:
			if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
				return int64(v), nil
			}
		}
	case ColBytes:
		switch v := v.(type) {
		case []byte:
			return append([]byte{}, v...), nil
		case string:
			return []byte(v), nil
		}
	case ColBool:
		switch v := v.(type) {
		case bool:
			return v, nil
		case int64:
			return v != 0, nil
		}
	}
	return nil, fmt.Errorf("value of type %T in a %s column", v, typ)
}

func formatUUID(u [16]byte) string {
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
