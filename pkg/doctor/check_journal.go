package doctor

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// checkJournalDeadLetters reports the journal entries Firestore refused
// for good. They are not lost — the journal keeps each with its payload
// and error — but they are not in Firestore until an operator retries
// them, so any is a warning with the commands that list and retry them.
func checkJournalDeadLetters(ctx context.Context, env *Env) Result {
	var r Result
	if env.Config == nil {
		r.Status, r.Summary = Skip, "skipped: no configuration"
		return r
	}
	if env.Config.Store.Backend != "firestore" {
		r.Status, r.Summary = Skip, "skipped: the embedded store has no journal"
		return r
	}
	path := filepath.Join(env.Config.DataDir, journalFile)
	r.add("journal", path)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		r.set(OK, "no local journal yet (created by wactl serve)")
		return r
	} else if err != nil {
		r.Status, r.Summary = Skip, "skipped: "+err.Error()
		return r
	}
	db, err := openReadOnly(path)
	if err != nil {
		r.fail("journal: " + err.Error())
		return r
	}
	defer db.Close()
	var version int
	if err := db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		r.fail("journal unreadable: " + err.Error())
		return r
	}
	if version < 2 {
		// Before dead letters had a table, a refused entry was only marked.
		var dead int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM entries WHERE state = 2`).Scan(&dead); err != nil {
			r.fail("journal unreadable: " + err.Error())
			return r
		}
		r.add("dead_letters", dead)
		if dead == 0 {
			r.set(OK, "no dead letters")
			return r
		}
		r.warn(fmt.Sprintf("%d journal entries refused by Firestore for good (journal schema %d)", dead, version))
		r.fix(Fix{Summary: "start this version of wactl once to upgrade the journal, then list and retry them", Commands: []string{
			"sudo systemctl restart wactl", "wactl journal dead-letters", "wactl journal retry --all",
		}})
		return r
	}
	var n int
	var oldest sql.NullInt64
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*), MIN(dead_ms) FROM dead_letters`).Scan(&n, &oldest); err != nil {
		r.fail("journal unreadable: " + err.Error())
		return r
	}
	r.add("dead_letters", n)
	if n == 0 {
		r.set(OK, "no dead letters: every journal entry was shipped or is queued")
		return r
	}
	if oldest.Valid {
		now := time.Now
		if env.Now != nil {
			now = env.Now
		}
		r.add("oldest", now().Sub(time.UnixMilli(oldest.Int64)).Round(time.Second))
	}
	rows, err := db.QueryContext(ctx, `SELECT code, kind, COUNT(*) FROM dead_letters GROUP BY code, kind ORDER BY 3 DESC`)
	if err == nil {
		var by []string
		for rows.Next() {
			var code, kind string
			var c int
			if rows.Scan(&code, &kind, &c) == nil {
				by = append(by, fmt.Sprintf("%d %s %s", c, kind, code))
			}
		}
		rows.Close()
		r.add("by_kind_and_code", strings.Join(by, ", "))
	}
	r.warn(fmt.Sprintf("%d journal entries refused by Firestore for good: kept in the journal, not in Firestore", n))
	r.fix(Fix{Summary: "see why, fix the cause (often: upgrade wactl), then queue them again", Commands: []string{
		"wactl journal dead-letters",
		"wactl journal retry --all   # or: wactl journal retry ID…",
	}})
	return r
}
