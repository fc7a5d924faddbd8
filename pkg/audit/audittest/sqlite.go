package audittest

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/wactl/wactl/pkg/store/sqlite"
)

// CreateSQLite creates an empty embedded store at path with the store's
// own schema.
func CreateSQLite(ctx context.Context, path string) error {
	s, err := sqlite.Open(ctx, sqlite.Options{Path: path})
	if err != nil {
		return err
	}
	return s.Close()
}

// WriteSQLite inserts msgs raw into the embedded store at path (creating
// it), and a thread row per thread whose summary is its newest message.
// Documents without a Timestamp tsClient are skipped: the embedded store
// has only ever had integer times.
func WriteSQLite(ctx context.Context, path string, msgs []Msg) error {
	if err := CreateSQLite(ctx, path); err != nil {
		return err
	}
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
	if err != nil {
		return err
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	threads := map[string]bool{}
	for _, m := range msgs {
		if !threads[m.Thread] {
			threads[m.Thread] = true
			if _, err := tx.ExecContext(ctx, `INSERT INTO threads (id, account_id) VALUES (?, ?)`, m.Thread, Account); err != nil {
				return err
			}
		}
	}
	ins, err := tx.PrepareContext(ctx, `INSERT INTO messages (tkey, thread_id, doc_id, account_id, client_jid, client_jid_raw, raw_jid, resolved_jid,
	normalized_phone, peer_type, is_group, sender_jid, sender_name, direction, body, wa_message_id, wa_message_id_raw,
	provider_message_id, client_message_id, status, message_type, media_type, ts_client_ms, source, stable_key_hash,
	fingerprint_hash, created_at_ms, ingested_at_ms, updated_at_ms)
	VALUES ((SELECT tkey FROM threads WHERE id = ?), ?, ?, ?, ?, '', '', '', '', 'user', 0, '', '', ?, ?, ?, '', ?, '', ?, ?, '', ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	type last struct {
		ms   int64
		text string
	}
	newest := map[string]last{}
	str := func(m map[string]any, k string) string { s, _ := m[k].(string); return s }
	for _, m := range msgs {
		ts, ok := m.Fields["tsClient"].(time.Time)
		if !ok {
			continue
		}
		f := m.Fields
		ing, _ := f["ingestedAt"].(time.Time)
		if _, err := ins.ExecContext(ctx, m.Thread, m.Thread, m.ID, str(f, "accountId"), str(f, "clientJid"), str(f, "direction"), str(f, "body"),
			str(f, "waMessageId"), str(f, "providerMessageId"), str(f, "status"), str(f, "messageType"), ts.UnixMilli(), str(f, "source"),
			str(f, "stableKeyHash"), str(f, "fingerprintHash"), ts.UnixMilli(), ing.UnixMilli(), ing.UnixMilli()); err != nil {
			return fmt.Errorf("insert %s/%s: %w", m.Thread, m.ID, err)
		}
		if l, ok := newest[m.Thread]; !ok || ts.UnixMilli() > l.ms {
			newest[m.Thread] = last{ts.UnixMilli(), str(f, "body")}
		}
	}
	for th, l := range newest {
		if _, err := tx.ExecContext(ctx, `INSERT INTO threads (id, account_id, last_message_at_ms, last_message_text) VALUES (?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET last_message_at_ms = excluded.last_message_at_ms, last_message_text = excluded.last_message_text`,
			th, Account, l.ms, l.text); err != nil {
			return err
		}
	}
	return tx.Commit()
}
