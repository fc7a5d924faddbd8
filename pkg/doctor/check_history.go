package doctor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// historyQueueFile is the daemon's durable history-sync queue under
// data_dir (pkg/histq.FileName; not imported to keep doctor light).
const historyQueueFile = "history-queue.db"

// checkHistoryQueue reports history syncs the daemon accepted but could not
// record (their blob was gone or undecodable after every retry): each is a
// named, counted loss. Syncs still queued are shown as evidence; edits
// waiting for their message too.
func checkHistoryQueue(ctx context.Context, env *Env) Result {
	var r Result
	if env.Config == nil {
		r.Status, r.Summary = Skip, "skipped: no configuration"
		return r
	}
	path := filepath.Join(env.Config.DataDir, historyQueueFile)
	r.add("queue", path)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		r.set(OK, "no history queue yet (created by wactl serve)")
		return r
	} else if err != nil {
		r.Status, r.Summary = Skip, "skipped: "+err.Error()
		return r
	}
	db, err := openReadOnly(path)
	if err != nil {
		r.fail("history queue: " + err.Error())
		return r
	}
	defer db.Close()
	var pending, lost, parked int
	if err := db.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM entries), (SELECT count(*) FROM losses), (SELECT count(*) FROM parked)`).
		Scan(&pending, &lost, &parked); err != nil {
		r.fail("history queue unreadable: " + err.Error())
		return r
	}
	r.add("queued", pending)
	r.add("lost", lost)
	r.add("edits_parked", parked)
	rows, err := db.QueryContext(ctx, `SELECT account, msg_id, reason, attempts, recorded, rerequested FROM losses ORDER BY id DESC LIMIT 20`)
	if err != nil {
		r.fail("history queue unreadable: " + err.Error())
		return r
	}
	defer rows.Close()
	for rows.Next() {
		var acct, id, reason string
		var attempts, recorded int
		var again bool
		if err := rows.Scan(&acct, &id, &reason, &attempts, &recorded, &again); err != nil {
			r.fail("history queue unreadable: " + err.Error())
			return r
		}
		asked := "the phone could not be asked again (no recorded chat to anchor a request at)"
		if again {
			asked = "the phone was asked for the recent chats again"
		}
		r.note("lost: account %s, sync %s: %s after %d attempts, %d messages recorded before; %s", acct, id, reason, attempts, recorded, asked)
	}
	if lost == 0 {
		r.set(OK, fmt.Sprintf("no history sync lost (%d queued)", pending))
		return r
	}
	r.warn(fmt.Sprintf("%d history syncs could not be recorded (their media was gone or undecodable after every retry)", lost))
	r.fix(Fix{Summary: "ask the phones for recent history again (the app's backfill), and keep phones online after pairing so the initial sync downloads", Commands: []string{
		"curl -X POST -H \"Authorization: Bearer $(sudo cat /etc/wactl/api-token)\" http://127.0.0.1:8080/api/whatsapp/backfill/ACCOUNT_ID   # each account named above",
	}})
	return r
}
