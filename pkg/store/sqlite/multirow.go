package sqlite

import (
	"database/sql"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/wactl/wactl/pkg/dedupe"
	"github.com/wactl/wactl/pkg/store"
)

// multiRows is how many messages one multi-row statement carries. Per
// statement, database/sql and the driver cost about as much as SQLite's own
// work on a row, so history batches go 32 rows at a time.
const multiRows = 32

const messageParams = 29

func multiValues(cols, rows int) string {
	one := "(" + strings.TrimSuffix(strings.Repeat("?,", cols), ",") + ")"
	return strings.TrimSuffix(strings.Repeat(one+",", rows), ",")
}

var (
	sqlMultiGetMapping = `SELECT wa_message_id, seq FROM message_ids WHERE account_id = ? AND wa_message_id IN (` +
		strings.TrimSuffix(strings.Repeat("?,", multiRows), ",") + `)`
	sqlMultiDocSeq = `SELECT doc_id, seq FROM messages WHERE doc_id IN (` +
		strings.TrimSuffix(strings.Repeat("?,", multiRows), ",") + `)`
	sqlMultiMessage = strings.Replace(strings.TrimSuffix(sqlInsertMessage, ` RETURNING seq`),
		`VALUES `+multiValues(messageParams, 1), `VALUES `+multiValues(messageParams, multiRows), 1)
	sqlInsertMessageOnly = strings.TrimSuffix(sqlInsertMessage, ` RETURNING seq`)
)

// many records a batch with the same outcomes as calling one for each
// message in order, using multi-row statements where that cannot change an
// outcome: a group of multiRows messages with WhatsApp ids, no repeated id
// or document inside the group, and strong dedupe off (a fingerprint twin
// inside one group would otherwise slip through). Anything else goes
// message by message.
func (r *recorder) many(batch []store.Message, outs []store.Outcome) error {
	for start := 0; start < len(batch); start += multiRows {
		part := batch[start:min(start+multiRows, len(batch))]
		po := outs[start : start+len(part)]
		if len(part) == multiRows && !r.s.opts.StrongDedupe && groupable(part) {
			if err := r.group(part, po); err != nil {
				return err
			}
			continue
		}
		for i := range part {
			o, err := r.one(&part[i])
			if err != nil {
				return err
			}
			po[i] = o
		}
	}
	return nil
}

func groupable(part []store.Message) bool {
	seen := make(map[string]struct{}, len(part))
	for i := range part {
		m := &part[i]
		// A document id other than the derived one (an app send) may need
		// an alias: such messages go one by one.
		if m.WAMessageID == "" || m.AccountID != part[0].AccountID || !dedupe.IsMessageDocID(m.DocID, m.AccountID, m.WAMessageID) {
			return false
		}
		if _, dup := seen[m.WAMessageID]; dup {
			return false
		}
		seen[m.WAMessageID] = struct{}{}
	}
	return true
}

// group records multiRows messages whose document ids are their derived
// ones: an alias lookup, one insert, and one lookup of the documents that
// existed already (a repeated sync); no message_ids rows are written.
func (r *recorder) group(part []store.Message, outs []store.Outcome) error {
	st := r.s.stmts
	acc := part[0].AccountID

	// 1. Ids with an alias belong to another document already.
	args := append(r.s.argBuf[:0], acc)
	for i := range part {
		args = append(args, part[i].WAMessageID)
	}
	known, err := r.pairs(st.multiGetMapping, args, "message_ids lookup")
	if err != nil {
		return err
	}

	// 2. Insert the others. A document that exists already is not
	// inserted (ON CONFLICT DO NOTHING). RETURNING would say which rows
	// were, but costs as much as the index work itself (SQLite buffers the
	// returned rows in a temporary b-tree), so the row count says it in
	// the common case: all of them.
	args = args[:0]
	for i := range part {
		m := &part[i]
		if _, ok := known[m.WAMessageID]; ok {
			continue
		}
		tkey, err := r.threadKey(m)
		if err != nil {
			return err
		}
		args = append(args, r.messageArgs(tkey, m)...)
	}
	todo := len(args) / messageParams
	var added int64
	if todo == multiRows {
		if added, err = rowsAffected(r.ts.get(st.multiMessage).Exec(args...)); err != nil {
			return fmt.Errorf("insert messages: %w", err)
		}
	} else {
		for i := 0; i < len(args); i += messageParams {
			n, err := rowsAffected(r.ts.get(st.insertMessageOnly).Exec(args[i : i+messageParams]...))
			if err != nil {
				return fmt.Errorf("insert message: %w", err)
			}
			added += n
		}
	}

	// 3. Unless all were new, look the documents up (one statement; the
	// IN list is padded with a repeat so one prepared statement fits any
	// count). SQLite gives a new row a rowid above every existing one
	// (max + 1; no AUTOINCREMENT wrap-around at 2^63 in practice), so the
	// `added` highest row ids are the rows just inserted.
	inserted := make(map[string]bool, todo)
	existing := map[string]int64{}
	if int(added) == todo {
		for i := range part {
			if _, ok := known[part[i].WAMessageID]; !ok {
				inserted[part[i].DocID] = true
			}
		}
	} else {
		args = args[:0]
		for i := range part {
			if _, ok := known[part[i].WAMessageID]; !ok {
				args = append(args, part[i].DocID)
			}
		}
		for len(args) < multiRows {
			args = append(args, args[0])
		}
		if existing, err = r.pairs(st.multiDocSeq, args, "find documents"); err != nil {
			return err
		}
		seqs := make([]int64, 0, len(existing))
		for _, seq := range existing {
			seqs = append(seqs, seq)
		}
		slices.Sort(seqs)
		if int(added) > len(seqs) {
			return fmt.Errorf("insert messages: %d rows inserted but %d documents found", added, len(seqs))
		}
		newFrom := int64(math.MaxInt64)
		if added > 0 {
			newFrom = seqs[len(seqs)-int(added)]
		}
		for doc, seq := range existing {
			if seq >= newFrom {
				inserted[doc] = true
				delete(existing, doc)
			}
		}
	}

	clear(args) // drop references to this group's values
	r.s.argBuf = args[:0]

	// 4. Outcomes; repeats merge into their document.
	for i := range part {
		m := &part[i]
		var o store.Outcome
		if seq, ok := known[m.WAMessageID]; ok {
			o, err = r.merge(seq, m)
		} else if inserted[m.DocID] {
			o = store.Wrote
		} else if seq, ok := existing[m.DocID]; ok {
			o, err = r.merge(seq, m)
		} else {
			err = fmt.Errorf("document %s was neither inserted nor found", m.DocID)
		}
		if err != nil {
			return err
		}
		outs[i] = o
		r.count(m, o)
	}
	return nil
}

// pairs runs a query of (text, seq) rows and returns them as a map.
func (r *recorder) pairs(stmt *sql.Stmt, args []any, what string) (map[string]int64, error) {
	rows, err := r.ts.get(stmt).Query(args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	out := make(map[string]int64, multiRows)
	for rows.Next() {
		var k string
		var seq int64
		if err := rows.Scan(&k, &seq); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out[k] = seq
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

func rowsAffected(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
