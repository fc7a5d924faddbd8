package audit

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Kinds of key value the scan query returns in its flags column; they say
// which Doc fields its value column fills.
const (
	scanStable      = 1 // stable_key_hash
	scanFingerprint = 2 // fingerprint_hash
	scanProvider    = 3 // account_id, provider_message_id
	scanDocID       = 4 // doc_id (no key of the chosen kind, or a stub)
	scanContent     = 5 // direction, message_type, body
)

// scanSep joins the fields of a kind with more than one. Only the last
// field (provider id, body) may contain it: account ids, directions and
// message types are fixed vocabularies.
const scanSep = "\x01"

// scanColumns is, per key strategy, the SQL of the row's key kind and
// value. The key is chosen in SQL so that each row crosses the driver as
// five columns and one string: the profile of a million-row audit was the
// driver's per-column cost (a mutex pair, a type switch and a boxed value
// each), not SQLite's.
func scanColumns(k KeyStrategy) (kind, value string) {
	switch k {
	case KeyStable:
		return `CASE WHEN stable_key_hash <> '' THEN 1 ELSE 4 END`,
			`CASE WHEN stable_key_hash <> '' THEN stable_key_hash ELSE doc_id END`
	case KeyFingerprint:
		return `CASE WHEN fingerprint_hash <> '' THEN 2 ELSE 4 END`,
			`CASE WHEN fingerprint_hash <> '' THEN fingerprint_hash ELSE doc_id END`
	case KeyLegacy:
		return `5`, `direction || char(1) || message_type || char(1) || body`
	}
	// auto; a receipt stub (no content, no key) is grouped by its doc id.
	return `CASE WHEN stable_key_hash <> '' THEN 1 WHEN fingerprint_hash <> '' THEN 2 WHEN provider_message_id <> '' THEN 3
		WHEN direction = '' AND message_type = '' AND body = '' THEN 4 ELSE 5 END`,
		`CASE WHEN stable_key_hash <> '' THEN stable_key_hash WHEN fingerprint_hash <> '' THEN fingerprint_hash
		WHEN provider_message_id <> '' THEN account_id || char(1) || provider_message_id
		WHEN direction = '' AND message_type = '' AND body = '' THEN doc_id
		ELSE direction || char(1) || message_type || char(1) || body END`
}

// Scan reads the selection. Only the newest-Limit cut is sorted (integers,
// from an index), the rows themselves are read in table order: no sort of
// whole rows, memory independent of the table.
func (e *Embedded) Scan(ctx context.Context, sel Selection, fn func(*Doc) error) (ScanStats, error) {
	st := ScanStats{Shapes: map[string]int{}}
	w, args, n, err := e.limitedWhere(ctx, sel)
	if err != nil {
		return st, err
	}
	from, err := e.scanAccess(ctx, sel, n)
	if err != nil {
		return st, err
	}
	kindSQL, valueSQL := scanColumns(sel.Key)
	rows, err := e.db.QueryContext(ctx, `SELECT seq, tkey, ts_client_ms, is_duplicate + 8 * (`+kindSQL+`), `+valueSQL+
		` FROM messages`+from+w, args...)
	if err != nil {
		return st, fmt.Errorf("read messages: %w", err)
	}
	defer rows.Close()
	// Threads are identified by their integer tkey (1:1 with the thread id)
	// while grouping; Resolve gives the real ids. One string per thread,
	// not per row.
	threads := map[int64]string{}
	// database/sql assigns to *any without reflection, unlike *int64.
	var seq, tkey, ts, flags, value any
	dest := []any{&seq, &tkey, &ts, &flags, &value}
	var d Doc
	n = 0
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return st, err
		}
		tk, _ := tkey.(int64)
		th, ok := threads[tk]
		if !ok {
			th = "#" + strconv.FormatInt(tk, 10)
			threads[tk] = th
		}
		ms, _ := ts.(int64)
		fl, _ := flags.(int64)
		d = Doc{ThreadID: th, TsClient: time.UnixMilli(ms).UTC(), Shape: ShapeTimestamp, IsDuplicate: fl&1 == 1}
		d.Ref, _ = seq.(int64)
		v, _ := value.(string)
		switch fl >> 3 {
		case scanStable:
			d.StableKeyHash = v
		case scanFingerprint:
			d.FingerprintHash = v
		case scanProvider:
			d.AccountID, d.ProviderMessageID, _ = strings.Cut(v, scanSep)
		case scanDocID:
			d.ID = v
		case scanContent:
			var rest string
			d.Direction, rest, _ = strings.Cut(v, scanSep)
			d.MessageType, d.Body, _ = strings.Cut(rest, scanSep)
		}
		n++
		if err := fn(&d); err != nil {
			return st, err
		}
	}
	st.Scanned = n
	st.Shapes["timestamp"] = n
	return st, rows.Err()
}

// limitedWhere is the selection's filter with, when Limit cuts it, the
// bound that keeps exactly the newest Limit rows, and how many rows it
// selects.
func (e *Embedded) limitedWhere(ctx context.Context, sel Selection) (string, []any, int, error) {
	w, args := e.where(sel)
	n, err := e.countRows(ctx, sel)
	if err != nil {
		return "", nil, 0, fmt.Errorf("count messages: %w", err)
	}
	if sel.Limit <= 0 || n <= sel.Limit {
		return w, args, n, nil
	}
	var ts, seq int64
	err = e.db.QueryRowContext(ctx, `SELECT ts_client_ms, seq FROM messages`+w+
		` ORDER BY ts_client_ms DESC, seq DESC LIMIT 1 OFFSET ?`, append(args, sel.Limit-1)...).Scan(&ts, &seq)
	if err != nil {
		return "", nil, 0, fmt.Errorf("find the newest %d messages: %w", sel.Limit, err)
	}
	if w == "" {
		w = " WHERE "
	} else {
		w += " AND "
	}
	// The first term is implied by the second; it is there so that a
	// ts_client_ms index can serve the range.
	w += "ts_client_ms >= ? AND (ts_client_ms > ? OR (ts_client_ms = ? AND seq >= ?))"
	return w, append(args, ts, ts, ts, seq), sel.Limit, nil
}
