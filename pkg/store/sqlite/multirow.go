package sqlite

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"

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
	sqlMultiMapping = `INSERT INTO message_ids (account_id, wa_message_id, seq) VALUES ` + multiValues(3, multiRows)
	sqlMultiMessage = strings.Replace(strings.TrimSuffix(sqlInsertMessage, ` RETURNING seq`),
		`VALUES `+multiValues(messageParams, 1), `VALUES `+multiValues(messageParams, multiRows), 1) + ` RETURNING tkey, doc_id, seq`
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
	seen := make(map[string]struct{}, 2*len(part))
	for i := range part {
		m := &part[i]
		if m.WAMessageID == "" || m.AccountID != part[0].AccountID {
			return false
		}
		kw, kd := "w"+m.WAMessageID, "d"+m.ThreadID+"|"+m.DocID
		if _, dup := seen[kw]; dup {
			return false
		}
		if _, dup := seen[kd]; dup {
			return false
		}
		seen[kw], seen[kd] = struct{}{}, struct{}{}
	}
	return true
}

type docKey struct {
	tkey int64
	doc  string
}

func (r *recorder) group(part []store.Message, outs []store.Outcome) error {
	st := r.s.stmts
	acc := part[0].AccountID

	// 1. Which ids are known already?
	args := make([]any, 0, messageParams*multiRows)
	args = append(args, acc)
	for i := range part {
		args = append(args, part[i].WAMessageID)
	}
	rows, err := r.ts.get(st.multiGetMapping).Query(args...)
	if err != nil {
		return fmt.Errorf("message_ids lookup: %w", err)
	}
	known := make(map[string]int64, multiRows)
	for rows.Next() {
		var id string
		var seq int64
		if err := rows.Scan(&id, &seq); err != nil {
			rows.Close()
			return err
		}
		known[id] = seq
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}

	// 2. Insert the new ones.
	tkeys := make([]int64, len(part))
	args = args[:0]
	for i := range part {
		m := &part[i]
		if _, ok := known[m.WAMessageID]; ok {
			continue
		}
		if tkeys[i], err = r.threadKey(m); err != nil {
			return err
		}
		args = append(args, r.messageArgs(tkeys[i], m)...)
	}
	inserted := make(map[docKey]int64, multiRows)
	if len(args) == messageParams*multiRows {
		rows, err := r.ts.get(st.multiMessage).Query(args...)
		if err != nil {
			return fmt.Errorf("insert messages: %w", err)
		}
		for rows.Next() {
			var k docKey
			var seq int64
			if err := rows.Scan(&k.tkey, &k.doc, &seq); err != nil {
				rows.Close()
				return err
			}
			inserted[k] = seq
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("insert messages: %w", err)
		}
	} else {
		for i := 0; i < len(args); i += messageParams {
			var seq int64
			err := r.ts.get(st.insertMessage).QueryRow(args[i : i+messageParams]...).Scan(&seq)
			if err == nil {
				inserted[docKey{args[i].(int64), args[i+2].(string)}] = seq
			} else if !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("insert message: %w", err)
			}
		}
	}

	// 3. Map the inserted ids in one statement when all were inserted.
	if len(inserted) == multiRows {
		args = args[:0]
		for i := range part {
			m := &part[i]
			args = append(args, acc, m.WAMessageID, inserted[docKey{tkeys[i], m.DocID}])
		}
		if _, err := r.ts.get(st.multiMapping).Exec(args...); err != nil {
			return fmt.Errorf("message_ids: %w", err)
		}
	}

	// 4. Outcomes; repeats merge into their document.
	for i := range part {
		m := &part[i]
		var o store.Outcome
		if seq, ok := known[m.WAMessageID]; ok {
			if o, err = r.merge(seq, m); err != nil {
				return err
			}
		} else if seq, ok := inserted[docKey{tkeys[i], m.DocID}]; ok {
			o = store.Wrote
			if len(inserted) != multiRows {
				if err := r.addMapping(m, seq); err != nil {
					return err
				}
			}
		} else if o, err = r.mergeExistingDoc(tkeys[i], m); err != nil {
			return err
		}
		outs[i] = o
		r.count(m, o)
	}
	return nil
}
