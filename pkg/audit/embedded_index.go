package audit

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// tsIndex returns the name of an index of messages whose first column is
// ts_client_ms, or "". The store's migrations add one in some versions and
// not others, so the audit asks the database rather than assuming.
func tsIndex(ctx context.Context, db *sql.DB) (string, error) {
	rows, err := db.QueryContext(ctx, `SELECT name FROM pragma_index_list('messages')`)
	if err != nil {
		return "", err
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return "", err
		}
		names = append(names, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return "", err
	}
	for _, n := range names {
		var col sql.NullString
		err := db.QueryRowContext(ctx, `SELECT name FROM pragma_index_info(?) WHERE seqno = 0`, n).Scan(&col)
		if err == sql.ErrNoRows {
			continue
		}
		if err != nil {
			return "", err
		}
		if col.String == "ts_client_ms" {
			return n, nil
		}
	}
	return "", nil
}

// scanAccess is the FROM clause's index choice for a selection of n rows.
// A thread or account selection is left to the planner (the store indexes
// both with the time). Otherwise the planner, without statistics, would
// read a window through a ts_client_ms index even when the window is most
// of the table — a random row lookup each — so the index is used only when
// the selection is a small part of the table, and the table is read in
// order otherwise.
func (e *Embedded) scanAccess(ctx context.Context, sel Selection, n int) (string, error) {
	if sel.ThreadID != "" || sel.AccountID != "" {
		return "", nil
	}
	if e.tsIndex == "" {
		return " NOT INDEXED", nil
	}
	var rows int64
	if err := e.db.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM messages`).Scan(&rows); err != nil {
		return "", fmt.Errorf("size the messages table: %w", err)
	}
	if int64(n)*4 < rows {
		return ` INDEXED BY "` + strings.ReplaceAll(e.tsIndex, `"`, `""`) + `"`, nil
	}
	return " NOT INDEXED", nil
}
