package sessions

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.mau.fi/whatsmeow/store/sqlstore/upgrades"
)

// WhatsmeowSchemaVersion is the schema version of the whatsmeow this wactl
// links (the length of its upgrade table); snapshots record it and a
// restore needs the same one.
func WhatsmeowSchemaVersion() int { return len(upgrades.Table) }

// tableSpec describes one whatsmeow table for snapshots. deviceCol is the
// column holding the device JID that the rows belong to; empty for tables
// shared by all devices of a database (whatsmeow_lid_map: phone-number ↔
// LID pairs, which are public facts, not keys).
type tableSpec struct {
	name      string
	deviceCol string
	columns   []Column
	key       []string // primary key, the export order
}

func cols(spec ...string) []Column {
	out := make([]Column, 0, len(spec))
	for _, s := range spec {
		name, typ, _ := strings.Cut(s, ":")
		out = append(out, Column{Name: name, Type: ColumnType(typ)})
	}
	return out
}

// whatsmeowTables is whatsmeow's schema v11 (store/sqlstore/upgrades) in
// insertion order: parents before children of foreign keys. A test opens a
// fresh whatsmeow database and checks that this list names every table and
// column, so a whatsmeow upgrade that changes the schema fails it.
var whatsmeowTables = []tableSpec{
	{"whatsmeow_device", "jid", cols("jid:text", "lid:text", "facebook_uuid:text", "registration_id:int",
		"noise_key:bytes", "identity_key:bytes", "signed_pre_key:bytes", "signed_pre_key_id:int", "signed_pre_key_sig:bytes",
		"adv_key:bytes", "adv_details:bytes", "adv_account_sig:bytes", "adv_account_sig_key:bytes", "adv_device_sig:bytes",
		"platform:text", "business_name:text", "push_name:text", "lid_migration_ts:int"), []string{"jid"}},
	{"whatsmeow_identity_keys", "our_jid", cols("our_jid:text", "their_id:text", "identity:bytes"), []string{"our_jid", "their_id"}},
	{"whatsmeow_pre_keys", "jid", cols("jid:text", "key_id:int", "key:bytes", "uploaded:bool"), []string{"jid", "key_id"}},
	{"whatsmeow_sessions", "our_jid", cols("our_jid:text", "their_id:text", "session:bytes"), []string{"our_jid", "their_id"}},
	{"whatsmeow_sender_keys", "our_jid", cols("our_jid:text", "chat_id:text", "sender_id:text", "sender_key:bytes"), []string{"our_jid", "chat_id", "sender_id"}},
	{"whatsmeow_app_state_sync_keys", "jid", cols("jid:text", "key_id:bytes", "key_data:bytes", "timestamp:int", "fingerprint:bytes"), []string{"jid", "key_id"}},
	{"whatsmeow_app_state_version", "jid", cols("jid:text", "name:text", "version:int", "hash:bytes"), []string{"jid", "name"}},
	{"whatsmeow_app_state_mutation_macs", "jid", cols("jid:text", "name:text", "version:int", "index_mac:bytes", "value_mac:bytes"), []string{"jid", "name", "version", "index_mac"}},
	{"whatsmeow_contacts", "our_jid", cols("our_jid:text", "their_jid:text", "first_name:text", "full_name:text", "push_name:text", "business_name:text", "redacted_phone:text"), []string{"our_jid", "their_jid"}},
	{"whatsmeow_chat_settings", "our_jid", cols("our_jid:text", "chat_jid:text", "muted_until:int", "pinned:bool", "archived:bool"), []string{"our_jid", "chat_jid"}},
	{"whatsmeow_message_secrets", "our_jid", cols("our_jid:text", "chat_jid:text", "sender_jid:text", "message_id:text", "key:bytes"), []string{"our_jid", "chat_jid", "sender_jid", "message_id"}},
	{"whatsmeow_privacy_tokens", "our_jid", cols("our_jid:text", "their_jid:text", "token:bytes", "timestamp:int"), []string{"our_jid", "their_jid"}},
	{"whatsmeow_lid_map", "", cols("lid:text", "pn:text"), []string{"lid"}},
	{"whatsmeow_event_buffer", "our_jid", cols("our_jid:text", "ciphertext_hash:bytes", "plaintext:bytes", "server_timestamp:int", "insert_timestamp:int"), []string{"our_jid", "ciphertext_hash"}},
}

// whatsmeowVersionTable is dbutil's version table of whatsmeow's store.
const whatsmeowVersionTable = "whatsmeow_version"

func specFor(name string) *tableSpec {
	for i := range whatsmeowTables {
		if whatsmeowTables[i].name == name {
			return &whatsmeowTables[i]
		}
	}
	return nil
}

// queryer is what export needs: a *sql.Tx of any database/sql driver whose
// SQL accepts $1 placeholders (SQLite and PostgreSQL both do).
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

type execer interface {
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

// readSchemaVersion reads whatsmeow's schema version inside tx.
func readSchemaVersion(ctx context.Context, q queryer) (int, error) {
	var v sql.NullInt64
	err := q.QueryRowContext(ctx, "SELECT version FROM "+whatsmeowVersionTable+" LIMIT 1").Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read whatsmeow schema version: %w", err)
	}
	return int(v.Int64), nil
}

// ExportDeviceTables reads every whatsmeow table's rows inside q (one read
// transaction, so they are consistent with each other). With deviceJID ""
// every row is taken (a per-account SQLite file holds one account); else
// only the rows of that device, plus the shared tables' rows, which is how a
// database shared by many accounts (PostgreSQL) is read.
func ExportDeviceTables(ctx context.Context, q queryer, deviceJID string) ([]Table, error) {
	out := make([]Table, 0, len(whatsmeowTables))
	for _, spec := range whatsmeowTables {
		names := make([]string, len(spec.columns))
		for i, c := range spec.columns {
			names[i] = c.Name
		}
		query := "SELECT " + strings.Join(names, ", ") + " FROM " + spec.name
		var args []any
		if deviceJID != "" && spec.deviceCol != "" {
			query += " WHERE " + spec.deviceCol + " = $1"
			args = append(args, deviceJID)
		}
		query += " ORDER BY " + strings.Join(spec.key, ", ")
		rows, err := q.QueryContext(ctx, query, args...)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", spec.name, err)
		}
		t := Table{Name: spec.name, Columns: spec.columns, Rows: [][]any{}}
		for rows.Next() {
			raw := make([]any, len(names))
			ptrs := make([]any, len(names))
			for i := range raw {
				ptrs[i] = &raw[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read %s: %w", spec.name, err)
			}
			for i, c := range spec.columns {
				v, err := normalizeValue(c.Type, raw[i])
				if err != nil {
					rows.Close()
					return nil, fmt.Errorf("read %s.%s: %w", spec.name, c.Name, err)
				}
				raw[i] = v
			}
			t.Rows = append(t.Rows, raw)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", spec.name, err)
		}
		out = append(out, t)
	}
	return out, nil
}

// CheckSnapshotTables refuses tables this wactl cannot write faithfully:
// unknown tables or columns, or a column whose type differs.
func CheckSnapshotTables(tables []Table) error {
	for _, t := range tables {
		spec := specFor(t.Name)
		if spec == nil {
			return fmt.Errorf("the snapshot has table %s, which this wactl's whatsmeow does not know", printable(t.Name))
		}
		for _, c := range t.Columns {
			i := slices.IndexFunc(spec.columns, func(sc Column) bool { return sc.Name == c.Name })
			if i < 0 {
				return fmt.Errorf("the snapshot has column %s.%s, which this wactl's whatsmeow does not know", t.Name, printable(c.Name))
			}
			if spec.columns[i].Type != c.Type {
				return fmt.Errorf("column %s.%s is %s in the snapshot, %s here", t.Name, c.Name, c.Type, spec.columns[i].Type)
			}
		}
	}
	return nil
}

// ImportDeviceTables inserts the tables' rows inside tx, in the snapshot's
// order (parents first). Rows of a shared table that already exist are kept
// (ON CONFLICT DO NOTHING, valid in SQLite and PostgreSQL); any other
// conflict fails the transaction, so the caller rolls back.
func ImportDeviceTables(ctx context.Context, tx execer, tables []Table) error {
	if err := CheckSnapshotTables(tables); err != nil {
		return err
	}
	ordered := make([]Table, 0, len(tables))
	for _, spec := range whatsmeowTables {
		for _, t := range tables {
			if t.Name == spec.name {
				ordered = append(ordered, t)
			}
		}
	}
	for _, t := range ordered {
		if len(t.Rows) == 0 {
			continue
		}
		spec := specFor(t.Name)
		names := make([]string, len(t.Columns))
		marks := make([]string, len(t.Columns))
		for i, c := range t.Columns {
			names[i] = c.Name
			marks[i] = fmt.Sprintf("$%d", i+1)
		}
		query := "INSERT INTO " + t.Name + " (" + strings.Join(names, ", ") + ") VALUES (" + strings.Join(marks, ", ") + ")"
		if spec.deviceCol == "" {
			query += " ON CONFLICT DO NOTHING"
		}
		stmt, err := tx.PrepareContext(ctx, query)
		if err != nil {
			return fmt.Errorf("write %s: %w", t.Name, err)
		}
		for i, row := range t.Rows {
			if _, err := stmt.ExecContext(ctx, row...); err != nil {
				stmt.Close()
				return fmt.Errorf("write %s row %d: %w", t.Name, i, err)
			}
		}
		stmt.Close()
	}
	return nil
}
