package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // database/sql driver "sqlite"
)

// Embedded is the audit backend of the embedded store: the SQLite file of
// package store/sqlite, read and written with SQL of its own so that the
// audit can stream a million rows without building store.Messages.
//
// The store's schema has is_duplicate and duplicate_of on messages but no
// columns for the run id and mark time; those live in this package's
// journal tables (cleanup_runs, cleanup_marks, cleanup_threads), created on
// the first --apply and never touched by the store's migrations.
type Embedded struct {
	db   *sql.DB
	path string
	// count of the selection last counted, so Estimate and Scan count once.
	countSel Selection
	count    int
}

// OpenEmbedded opens the store's database at path. It does not create or
// migrate it: auditing a store that was never written is a mistake to
// report, not an empty result.
func OpenEmbedded(ctx context.Context, path string) (*Embedded, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("embedded store %s: %w (check store.path, or run wactl serve once to create it)", path, err)
	}
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() +
		"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	var v int
	if err := db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
		db.Close()
		return nil, fmt.Errorf("embedded store %s: %w", path, err)
	}
	if v < 1 {
		db.Close()
		return nil, fmt.Errorf("embedded store %s has no schema: it is not a wactl database, or was never opened by wactl serve", path)
	}
	return &Embedded{db: db, path: path}, nil
}

func (e *Embedded) Name() string { return "embedded" }
func (e *Embedded) Close() error { return e.db.Close() }

// where builds the selection's filter; cutoff, when set, keeps rows at or
// after (ts, seq) so that exactly Limit rows remain.
func (e *Embedded) where(sel Selection) (string, []any) {
	var cl []string
	var args []any
	if sel.ThreadID != "" {
		cl, args = append(cl, "tkey = (SELECT tkey FROM threads WHERE id = ?)"), append(args, sel.ThreadID)
	} else if sel.AccountID != "" {
		cl, args = append(cl, "account_id = ?"), append(args, sel.AccountID)
	}
	if s := sel.Since(); !s.IsZero() {
		cl, args = append(cl, "ts_client_ms >= ?"), append(args, s.UnixMilli())
	}
	if len(cl) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(cl, " AND "), args
}

// Estimate is the number of rows the scan of sel yields.
func (e *Embedded) Estimate(ctx context.Context, sel Selection) (int, error) {
	n, err := e.countRows(ctx, sel)
	if err != nil {
		return 0, err
	}
	if sel.Limit > 0 && n > sel.Limit {
		n = sel.Limit
	}
	return n, nil
}

func (e *Embedded) countRows(ctx context.Context, sel Selection) (int, error) {
	if e.countSel == sel && e.count >= 0 {
		n := e.count
		e.count = -1 // one use: a later scan counts afresh
		return n, nil
	}
	w, args := e.where(sel)
	var n int
	if err := e.db.QueryRowContext(ctx, `SELECT count(*) FROM messages`+w, args...).Scan(&n); err != nil {
		return 0, err
	}
	e.countSel, e.count = sel, n
	return n, nil
}

// Scan reads the selection. Without an index on ts_client_ms alone, the
// newest-Limit cut is found first (one integer sort) and the rows are
// then read in table order: no sort of whole rows, memory independent of
// the table.
func (e *Embedded) Scan(ctx context.Context, sel Selection, fn func(*Doc) error) (ScanStats, error) {
	st := ScanStats{Shapes: map[string]int{}}
	w, args := e.where(sel)
	if sel.Limit > 0 {
		n, err := e.countRows(ctx, sel)
		if err != nil {
			return st, fmt.Errorf("count messages: %w", err)
		}
		if n > sel.Limit {
			var ts, seq int64
			err := e.db.QueryRowContext(ctx, `SELECT ts_client_ms, seq FROM messages`+w+
				` ORDER BY ts_client_ms DESC, seq DESC LIMIT 1 OFFSET ?`, append(args, sel.Limit-1)...).Scan(&ts, &seq)
			if err != nil {
				return st, fmt.Errorf("find the newest %d messages: %w", sel.Limit, err)
			}
			if w == "" {
				w = " WHERE "
			} else {
				w += " AND "
			}
			w += "(ts_client_ms > ? OR (ts_client_ms = ? AND seq >= ?))"
			args = append(args, ts, ts, seq)
		}
	}
	// Only the columns the key needs are read: text columns cost an
	// allocation each in the driver, and a million rows make that the
	// audit's main cost. Threads are identified by their integer tkey
	// (1:1 with the thread id) while grouping; Resolve gives the real ids.
	if sel.Key == KeyFingerprint {
		return st, e.fingerprintScan(ctx, w, args, fn, &st)
	}
	need := "0"
	switch sel.Key {
	case KeyLegacy:
		need = "1"
	case KeyAuto, "":
		need = "(stable_key_hash = '' AND fingerprint_hash = '' AND provider_message_id = '')"
	}
	provider := "''"
	if sel.Key == KeyAuto || sel.Key == "" {
		provider = "CASE WHEN stable_key_hash = '' AND fingerprint_hash = '' THEN provider_message_id ELSE '' END"
	}
	account := strings.ReplaceAll(provider, "provider_message_id", "account_id")
	rows, err := e.db.QueryContext(ctx, `SELECT seq, tkey, ts_client_ms, is_duplicate, stable_key_hash,
	CASE WHEN stable_key_hash = '' THEN fingerprint_hash ELSE '' END, `+provider+`, `+account+`,
	CASE WHEN stable_key_hash = '' OR fingerprint_hash = '' THEN doc_id ELSE '' END,
	CASE WHEN `+need+` THEN direction ELSE '' END, CASE WHEN `+need+` THEN message_type ELSE '' END,
	CASE WHEN `+need+` THEN body ELSE '' END FROM messages`+w, args...)
	if err != nil {
		return st, fmt.Errorf("read messages: %w", err)
	}
	defer rows.Close()
	var d Doc
	var ts, tkey int64
	var tbuf []byte
	for rows.Next() {
		d = Doc{Shape: ShapeTimestamp}
		if err := rows.Scan(&d.Ref, &tkey, &ts, &d.IsDuplicate, &d.StableKeyHash, &d.FingerprintHash, &d.ProviderMessageID,
			&d.AccountID, &d.ID, &d.Direction, &d.MessageType, &d.Body); err != nil {
			return st, err
		}
		tbuf = strconv.AppendInt(append(tbuf[:0], '#'), tkey, 10)
		d.ThreadID = string(tbuf)
		d.TsClient = time.UnixMilli(ts).UTC()
		st.Scanned++
		st.Shapes["timestamp"]++
		if err := fn(&d); err != nil {
			return st, err
		}
	}
	return st, rows.Err()
}

// fingerprintScan is --key fingerprint, which needs fingerprint_hash
// whether or not a stable key exists.
func (e *Embedded) fingerprintScan(ctx context.Context, w string, args []any, fn func(*Doc) error, st *ScanStats) error {
	*st = ScanStats{Shapes: map[string]int{}}
	rows, err := e.db.QueryContext(ctx, `SELECT seq, tkey, ts_client_ms, is_duplicate, fingerprint_hash,
	CASE WHEN fingerprint_hash = '' THEN doc_id ELSE '' END FROM messages`+w, args...)
	if err != nil {
		return fmt.Errorf("read messages: %w", err)
	}
	defer rows.Close()
	var d Doc
	var ts, tkey int64
	for rows.Next() {
		d = Doc{Shape: ShapeTimestamp}
		if err := rows.Scan(&d.Ref, &tkey, &ts, &d.IsDuplicate, &d.FingerprintHash, &d.ID); err != nil {
			return err
		}
		d.ThreadID = "#" + strconv.FormatInt(tkey, 10)
		d.TsClient = time.UnixMilli(ts).UTC()
		st.Scanned++
		st.Shapes["timestamp"]++
		if err := fn(&d); err != nil {
			return err
		}
	}
	return rows.Err()
}

const embeddedDocCols = `m.seq, m.thread_id, m.doc_id, m.account_id, m.ts_client_ms, m.direction, m.message_type, m.body,
	m.stable_key_hash, m.fingerprint_hash, m.provider_message_id, m.wa_message_id, m.ingested_at_ms, m.is_duplicate, m.duplicate_of,
	(m.client_jid <> '') + (m.sender_jid <> '') + (m.sender_name <> '') + (m.direction <> '') + (m.body <> '') +
	(m.wa_message_id <> '') + (m.provider_message_id <> '') + (m.client_message_id <> '') + (m.status <> '') +
	(m.message_type <> '') + (m.source <> '') + (m.stable_key_hash <> '') + (m.fingerprint_hash <> '') + (m.ingested_at_ms <> 0)`

// Resolve reads documents by rowid.
func (e *Embedded) Resolve(ctx context.Context, refs []int64) ([]Doc, error) {
	var out []Doc
	for chunk := range slices.Chunk(refs, 500) {
		q := `SELECT ` + embeddedDocCols + ` FROM messages m WHERE m.seq IN (?` + strings.Repeat(",?", len(chunk)-1) + `)`
		args := make([]any, len(chunk))
		for i, r := range chunk {
			args[i] = r
		}
		rows, err := e.db.QueryContext(ctx, q, args...)
		if err != nil {
			return nil, fmt.Errorf("read messages: %w", err)
		}
		for rows.Next() {
			var d Doc
			var ts, ing int64
			if err := rows.Scan(&d.Ref, &d.ThreadID, &d.ID, &d.AccountID, &ts, &d.Direction, &d.MessageType, &d.Body,
				&d.StableKeyHash, &d.FingerprintHash, &d.ProviderMessageID, &d.WAMessageID, &ing, &d.IsDuplicate, &d.DuplicateOf,
				&d.Completeness); err != nil {
				rows.Close()
				return nil, err
			}
			d.TsClient, d.Shape = time.UnixMilli(ts).UTC(), ShapeTimestamp
			if ing != 0 {
				d.IngestedAt = time.UnixMilli(ing).UTC()
			}
			d.PrevMark = map[string]any{"isDuplicate": d.IsDuplicate, "duplicateOf": d.DuplicateOf}
			out = append(out, d)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

var errNoRun = errors.New("no such cleanup run")
