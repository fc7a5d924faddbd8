package sessions

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/store/sqlstore"
)

// TestSnapshotSpecMatchesWhatsmeowSchema: the table list snapshots use
// names every table and column whatsmeow creates, so a whatsmeow upgrade
// that changes its schema fails here instead of losing data in backups.
func TestSnapshotSpecMatchesWhatsmeowSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "whatsmeow.db")
	c, err := sqlstore.New(ctx, "sqlite", DSN(path), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	db, err := sql.Open("sqlite", DSN(path))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if v, err := readSchemaVersion(ctx, db); err != nil || v != WhatsmeowSchemaVersion() {
		t.Fatalf("schema version %d (%v), want %d", v, err, WhatsmeowSchemaVersion())
	}
	rows, err := db.QueryContext(ctx, "SELECT name FROM sqlite_master WHERE type='table' AND name LIKE 'whatsmeow_%' AND name != 'whatsmeow_version' ORDER BY name")
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		tables = append(tables, n)
	}
	rows.Close()
	if len(tables) != len(whatsmeowTables) {
		t.Fatalf("whatsmeow has tables %v; the snapshot spec has %d", tables, len(whatsmeowTables))
	}
	for _, name := range tables {
		spec := specFor(name)
		if spec == nil {
			t.Fatalf("table %s is not in the snapshot spec", name)
		}
		var got []string
		r, err := db.QueryContext(ctx, "SELECT name FROM pragma_table_info(?) ORDER BY cid", name)
		if err != nil {
			t.Fatal(err)
		}
		for r.Next() {
			var n string
			r.Scan(&n)
			got = append(got, n)
		}
		r.Close()
		var want []string
		for _, c := range spec.columns {
			want = append(want, c.Name)
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("%s: whatsmeow has columns %v, the spec %v", name, got, want)
		}
	}
}

// TestSnapshotEncodingRoundTrip covers every value type, NULLs, invalid
// UTF-8 text and empty blobs through the JSON encoding and the digest.
func TestSnapshotEncodingRoundTrip(t *testing.T) {
	a := AccountSnapshot{AccountID: testID, SnapshotAt: time.Date(2026, 12, 4, 5, 0, 0, 0, time.UTC), SourceStore: "sqlite", WhatsmeowSchema: 11,
		Tables: []Table{{Name: "whatsmeow_chat_settings", Columns: cols("our_jid:text", "chat_jid:text", "muted_until:int", "pinned:bool", "archived:bool"),
			Rows: [][]any{{"a@s.whatsapp.net", "bad\xff\xfeutf8", int64(-1 << 62), true, nil}, {"b", "", int64(0), false, false}}},
			{Name: "whatsmeow_sessions", Columns: cols("our_jid:text", "their_id:text", "session:bytes"), Rows: [][]any{{"a", "b", []byte{}}, {"a", "c", []byte{0, 1, 2}}}}}}
	a.seal()
	var buf bytes.Buffer
	if err := EncodeAccount(&buf, &a); err != nil {
		t.Fatal(err)
	}
	got, err := DecodeAccount(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != a.Digest || got.Tables[0].Rows[0][1] != "bad\xff\xfeutf8" {
		t.Fatalf("round trip changed the rows: %+v", got.Tables)
	}
	got.Tables[1].Rows[1][2].([]byte)[0] = 9
	if err := got.Verify(); err == nil {
		t.Fatal("a changed row passes Verify")
	}
}

// FuzzDecodeSnapshot: any input either decodes into a snapshot whose every
// account verifies, or fails with ErrBadSnapshot; it never panics.
func FuzzDecodeSnapshot(f *testing.F) {
	a := AccountSnapshot{AccountID: testID, SourceStore: "sqlite", WhatsmeowSchema: 11,
		Tables: []Table{{Name: "whatsmeow_pre_keys", Columns: cols("jid:text", "key_id:int", "key:bytes", "uploaded:bool"),
			Rows: [][]any{{"j", int64(1), []byte{1, 2}, true}, {nil, nil, nil, nil}}}}}
	a.seal()
	var buf bytes.Buffer
	if err := EncodeAccount(&buf, &a); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte{0x1f, 0x8b})
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := DecodeSnapshot(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrBadSnapshot) {
				t.Fatalf("error without ErrBadSnapshot: %v", err)
			}
			return
		}
		for i := range s.Accounts {
			if err := s.Accounts[i].Verify(); err != nil {
				t.Fatal(err)
			}
		}
	})
}
