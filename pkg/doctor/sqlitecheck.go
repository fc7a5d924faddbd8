package doctor

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// sanityBudget bounds the default store check: doctor answers in well
// under a second whatever the store's size, and the full scan is --deep.
const sanityBudget = 250 * time.Millisecond

// sqliteSanity is the bounded check of an SQLite file: its header, its
// schema, the schema version, and both edges of every table's b-tree (the
// first and the last row, so a truncated or overwritten file shows). It
// reads a few pages per table, not the whole file: PRAGMA quick_check reads
// every page and takes about a second per million messages.
func sqliteSanity(ctx context.Context, path string) (tables int, err error) {
	if err := sqliteHeader(path); err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, sanityBudget)
	defer cancel()
	db, err := openReadOnly(path)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var v int
	if err := db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
		return 0, fmt.Errorf("schema version: %w", err)
	}
	rows, err := db.QueryContext(ctx, `SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND sql NOT LIKE '%WITHOUT ROWID%'`)
	if err != nil {
		return 0, fmt.Errorf("schema: %w", err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return 0, fmt.Errorf("schema: %w", err)
		}
		names = append(names, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("schema: %w", err)
	}
	for _, n := range names {
		q := `"` + strings.ReplaceAll(n, `"`, `""`) + `"`
		for _, order := range []string{"ASC", "DESC"} {
			var id any
			err := db.QueryRowContext(ctx, `SELECT rowid FROM `+q+` ORDER BY rowid `+order+` LIMIT 1`).Scan(&id)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return 0, fmt.Errorf("table %s: %w", n, err)
			}
		}
	}
	return len(names), nil
}

// sqliteHeader checks the 100-byte file header: the magic string, a valid
// page size, and a file length that is a whole number of pages.
func sqliteHeader(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var h [100]byte
	if _, err := io.ReadFull(f, h[:]); err != nil {
		return fmt.Errorf("header: %w (the file is shorter than an SQLite header)", err)
	}
	if string(h[:16]) != "SQLite format 3\x00" {
		return errors.New("header: not an SQLite database (magic string missing)")
	}
	ps := int64(binary.BigEndian.Uint16(h[16:18]))
	if ps == 1 {
		ps = 65536
	}
	if ps < 512 || ps&(ps-1) != 0 {
		return fmt.Errorf("header: invalid page size %d", ps)
	}
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Size()%ps != 0 {
		return fmt.Errorf("file is %d bytes, not a whole number of %d-byte pages: truncated or appended to", st.Size(), ps)
	}
	return nil
}
