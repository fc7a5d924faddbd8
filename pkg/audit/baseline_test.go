package audit

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// BaselineEmbedded is the embedded source with the previous scan.
type BaselineEmbedded struct{ *Embedded }

// Scan is the scan before the profile-guided rewrite: twelve columns a
// row, kept to measure the rewrite against in the same benchmark run.
//
// It reads the selection. Without an index on ts_client_ms alone, the
// newest-Limit cut is found first (one integer sort) and the rows are
// then read in table order: no sort of whole rows, memory independent of
// the table.
func (e *BaselineEmbedded) Scan(ctx context.Context, sel Selection, fn func(*Doc) error) (ScanStats, error) {
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
func (e *BaselineEmbedded) fingerprintScan(ctx context.Context, w string, args []any, fn func(*Doc) error, st *ScanStats) error {
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
