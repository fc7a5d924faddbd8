package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	_ "modernc.org/sqlite" // database/sql driver "sqlite"

	"github.com/wactl/wactl/pkg/config"
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
	// tsIndex is the store's index on ts_client_ms, when it has one.
	tsIndex string
	// count of the selection last counted, so Estimate and Scan count once.
	countSel Selection
	count    int
}

// OpenEmbedded opens the store's database at path. It does not create or
// migrate it: auditing a store that was never written is a mistake to
// report, not an empty result.
func OpenEmbedded(ctx context.Context, path string) (*Embedded, error) {
	if _, err := os.Stat(path); err != nil {
		if hint := config.ServiceHint(filepath.Dir(path), "audit duplicates"); hint != "" && errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("embedded store %s: %w; %s", path, err, hint)
		}
		if errors.Is(err, fs.ErrPermission) {
			return nil, fmt.Errorf("embedded store %s: %w; run the audit as the data dir's owner: sudo -u %s wactl audit duplicates",
				path, err, config.OwnerName(path))
		}
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
	idx, err := tsIndex(ctx, db)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("embedded store %s: list indexes: %w", path, err)
	}
	return &Embedded{db: db, path: path, tsIndex: idx}, nil
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
