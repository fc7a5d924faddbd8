package doctor

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	_ "modernc.org/sqlite" // database/sql driver "sqlite"
)

// journalFile is the Firestore mode's local journal under data_dir
// (internal/wiring.JournalFile).
const journalFile = "journal.db"

// journalStaleAfter: a backlog older than this means shipping is stuck.
const journalStaleAfter = 5 * time.Minute

func openReadOnly(path string) (*sql.DB, error) {
	u := url.URL{Scheme: "file", Path: path, RawQuery: "mode=ro&_pragma=busy_timeout(2000)"}
	if _, err := os.Lstat(path + "-wal"); errors.Is(err, fs.ErrNotExist) {
		// A closed WAL database (no -wal) is fully checkpointed. Read it as
		// immutable: otherwise SQLite creates a -wal and -shm that a
		// read-only connection cannot remove, left in the service's dir.
		u.RawQuery += "&immutable=1"
	}
	return sql.Open("sqlite", u.String())
}

func checkStoreLocal(ctx context.Context, env *Env) Result {
	var r Result
	if env.Config == nil {
		r.Status, r.Summary = Skip, "skipped: no configuration"
		return r
	}
	cfg := env.Config
	r.add("backend", cfg.Store.Backend)
	switch cfg.Store.Backend {
	case "embedded":
		path := cfg.Store.Path
		r.add("path", path)
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			r.warn("embedded database not created yet (wactl serve creates it)")
			return r
		} else if err != nil {
			r.Status, r.Summary = Skip, "skipped: "+err.Error()
			return r
		}
		recoverFix := Fix{Summary: "stop wactl, keep a copy, recover into a new file", Commands: []string{
			"sudo systemctl stop wactl",
			fmt.Sprintf("sudo cp -a %s %s.bak", shq(path), shq(path)),
			fmt.Sprintf("sqlite3 %s .recover | sqlite3 %s.recovered", shq(path), shq(path)),
		}}
		if !env.Deep {
			// The default stays bounded on a store of any size; the full
			// scan is one flag away.
			tables, err := sqliteSanity(ctx, path)
			if err != nil {
				r.fail(fmt.Sprintf("embedded database %s fails its integrity check: %s", path, err))
				r.fix(recoverFix)
				return r
			}
			r.add("tables_checked", tables)
			r.set(OK, "embedded database opens; header, schema and every table's first and last rows read (full PRAGMA quick_check: wactl doctor --deep)")
			return r
		}
		res, err := quickCheck(ctx, path)
		r.add("quick_check", res)
		if err != nil || res != "ok" {
			r.fail(fmt.Sprintf("embedded database %s fails its integrity check: %s", path, firstNonEmpty(errString(err), res)))
			r.fix(recoverFix)
			return r
		}
		r.set(OK, "embedded database opens and passes PRAGMA quick_check")
	case "firestore":
		path := filepath.Join(cfg.DataDir, journalFile)
		r.add("journal", path)
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			r.set(OK, "no local journal yet (created by wactl serve)")
			return r
		}
		db, err := openReadOnly(path)
		if err != nil {
			r.fail("journal: " + err.Error())
			return r
		}
		defer db.Close()
		var n, dead int
		var oldest sql.NullInt64
		err = db.QueryRowContext(ctx, `SELECT COUNT(*), MIN(created_ms) FROM entries WHERE state = 0`).Scan(&n, &oldest)
		if err == nil {
			err = db.QueryRowContext(ctx, `SELECT COUNT(*) FROM entries WHERE state = 2`).Scan(&dead)
		}
		if err != nil {
			r.fail("journal unreadable: " + err.Error())
			return r
		}
		r.add("journal_backlog", n)
		r.add("journal_dead", dead)
		age := time.Duration(0)
		if oldest.Valid {
			age = env.Now().Sub(time.UnixMilli(oldest.Int64))
			r.add("journal_oldest", age.Round(time.Second))
		}
		switch {
		case dead > 0:
			r.warn(fmt.Sprintf("%d journal entries refused by Firestore for good; they stay in %s", dead, path))
		case n > 0 && age > journalStaleAfter:
			r.warn(fmt.Sprintf("%d messages waiting for Firestore for %s: shipping is stuck", n, age.Round(time.Second)))
		default:
			r.set(OK, fmt.Sprintf("journal backlog %d", n))
		}
	default:
		r.fail(fmt.Sprintf("store.backend %q: use embedded or firestore", cfg.Store.Backend))
	}
	return r
}

func quickCheck(ctx context.Context, path string) (string, error) {
	db, err := openReadOnly(path)
	if err != nil {
		return "", err
	}
	defer db.Close()
	var res string
	if err := db.QueryRowContext(ctx, `PRAGMA quick_check`).Scan(&res); err != nil {
		return "", err
	}
	return res, nil
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// indexProbe is one query wactl runs that needs a composite index.
type indexProbe struct {
	name  string
	query func(c *firestore.Client) firestore.Query
}

var indexProbes = []indexProbe{
	{"messages (accountId ASC, tsClient DESC), collection group", func(c *firestore.Client) firestore.Query {
		return c.CollectionGroup("messages").Where("accountId", "==", "doctor-probe").OrderBy("tsClient", firestore.Desc).Limit(1)
	}},
	{"messages (accountId ASC, tsClientMs DESC), collection group", func(c *firestore.Client) firestore.Query {
		return c.CollectionGroup("messages").Where("accountId", "==", "doctor-probe").OrderBy("tsClientMs", firestore.Desc).Limit(1)
	}},
	{"threads (accountId ASC, lastMessageAt DESC)", func(c *firestore.Client) firestore.Query {
		return c.Collection("threads").Where("accountId", "==", "doctor-probe").OrderBy("lastMessageAt", firestore.Desc).Limit(1)
	}},
	{"outbox (status ASC, createdAt ASC)", func(c *firestore.Client) firestore.Query {
		return c.Collection("outbox").Where("status", "==", "doctor-probe").OrderBy("createdAt", firestore.Asc).Limit(1)
	}},
}

func checkStoreFirestore(ctx context.Context, env *Env) Result {
	var r Result
	if env.Config == nil {
		r.Status, r.Summary = Skip, "skipped: no configuration"
		return r
	}
	cfg := env.Config
	if cfg.Store.Backend != "firestore" && cfg.LockBackend() != "firestore" {
		r.Status, r.Summary = Skip, "skipped: Firestore not used (embedded store and lock)"
		return r
	}
	f := cfg.Store.Firestore
	r.add("project", orDash(f.ProjectID))
	r.add("database", f.Database)
	if f.EmulatorHost != "" {
		r.add("emulator", f.EmulatorHost)
	} else {
		r.add("credentials", orDefault(f.CredentialsFile, "application default"))
	}
	c, err := env.firestoreClient(ctx)
	if err != nil {
		r.fail("cannot open Firestore: " + err.Error())
		return r
	}
	start := time.Now()
	// Unavailable is retried until the deadline: bound it below the
	// check's timeout so the answer is "unreachable", not "hung".
	gctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	_, err = c.Collection("wa_metrics").Doc("health").Get(gctx)
	cancel()
	if err != nil && status.Code(err) != codes.NotFound {
		r.fail("Firestore unreachable with the configured credentials: " + err.Error())
		r.fix(Fix{Summary: "check the project, credentials and network", Commands: []string{
			"wactl config show | grep firestore",
			"gcloud auth application-default print-access-token >/dev/null && echo credentials ok",
		}})
		return r
	}
	r.add("read_latency", time.Since(start).Round(time.Millisecond))
	missing := 0
	for _, p := range indexProbes {
		_, err := p.query(c).Documents(ctx).Next()
		if status.Code(err) == codes.FailedPrecondition {
			missing++
			r.note("missing index: %s", p.name)
		}
	}
	r.add("indexes", fmt.Sprintf("%d/%d required present", len(indexProbes)-missing, len(indexProbes)))
	if missing > 0 {
		r.fail(fmt.Sprintf("%d required Firestore index(es) missing", missing))
		r.fix(Fix{Summary: "deploy the indexes wactl needs", Commands: []string{
			"firebase deploy --only firestore:indexes   # with configs/firestore.indexes.json",
		}})
		return r
	}
	r.set(OK, "Firestore reachable, required indexes present")
	return r
}
