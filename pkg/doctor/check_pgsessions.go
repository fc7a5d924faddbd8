package doctor

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/wactl/wactl/pkg/sessions"
)

// checkPGSessions looks at the PostgreSQL device store when one is
// configured: reachable, whatsmeow's and wactl's schema versions, and which
// accounts exist in which store (an account left in the other store after a
// switch is one the service will not restore). It changes nothing.
func checkPGSessions(ctx context.Context, env *Env) Result {
	var r Result
	c := env.Config
	if c == nil {
		r.Status, r.Summary = Skip, "skipped: no configuration"
		return r
	}
	active := c.Sessions.Store == sessions.StoreKindPostgres
	r.add("sessions.store", orDash(c.Sessions.Store))
	if c.Sessions.PostgresDSN == "" {
		r.Status, r.Summary = Skip, "skipped: no PostgreSQL device store configured (sessions.postgres_dsn)"
		return r
	}
	bad := r.warn
	if active {
		bad = r.fail
	}
	rep, err := sessions.InspectPostgres(ctx, sessions.PostgresOptions{DSN: c.Sessions.PostgresDSN, Timeout: c.Sessions.PostgresTimeout})
	if err != nil {
		r.add("reachable", "NO")
		bad("PostgreSQL device store: " + err.Error())
		r.note("check sessions.postgres_dsn (host, port, database, user, password, sslmode) and that the server accepts this host")
		return r
	}
	r.add("reachable", "YES")
	r.add("server_version", rep.ServerVersion)
	r.add("whatsmeow_schema", fmt.Sprintf("%d (this wactl: %d)", rep.WhatsmeowSchema, rep.WhatsmeowKnown))
	r.add("wactl_schema", fmt.Sprintf("%d (this wactl: %d)", rep.WactlSchema, sessions.PGSchemaVersion))
	switch {
	case rep.WhatsmeowSchema > rep.WhatsmeowKnown:
		r.fail(fmt.Sprintf("the PostgreSQL store has whatsmeow schema v%d, newer than this wactl's v%d: upgrade wactl on this host", rep.WhatsmeowSchema, rep.WhatsmeowKnown))
	case rep.WactlSchema > sessions.PGSchemaVersion:
		r.fail(fmt.Sprintf("the PostgreSQL store has wactl schema v%d, newer than this wactl's v%d: upgrade wactl on this host", rep.WactlSchema, sessions.PGSchemaVersion))
	case rep.WhatsmeowSchema == 0 || rep.WactlSchema == 0:
		r.note("the store's tables are created when wactl first opens it (serve or sessions migrate)")
	case rep.WhatsmeowSchema < rep.WhatsmeowKnown:
		r.note("whatsmeow's schema is upgraded from v%d to v%d when wactl next opens the store", rep.WhatsmeowSchema, rep.WhatsmeowKnown)
	}

	inPG := map[string]bool{}
	paired, inUse := 0, 0
	for _, a := range rep.Accounts {
		inPG[a.ID] = true
		if a.Paired {
			paired++
		}
		if a.InUse {
			inUse++
		}
	}
	r.add("postgres_accounts", len(rep.Accounts))
	r.add("postgres_paired", paired)
	r.add("postgres_in_use", inUse)
	var onlySQLite, both []string
	for _, id := range sqliteAccountIDs(c.Sessions.Path) {
		if inPG[id] {
			both = append(both, id)
			delete(inPG, id)
		} else {
			onlySQLite = append(onlySQLite, id)
		}
	}
	r.add("sqlite_only", len(onlySQLite))
	r.add("postgres_only", len(inPG))
	r.add("in_both", len(both))
	if len(rep.OrphanDevices) > 0 {
		r.add("orphan_devices", len(rep.OrphanDevices))
		r.warn(fmt.Sprintf("%d device(s) in PostgreSQL that no account names; they are not restored", len(rep.OrphanDevices)))
	}
	switch {
	case active && len(onlySQLite) > 0:
		r.warn(fmt.Sprintf("%d account(s) only in the SQLite sessions dir, which sessions.store: postgres does not read: %s", len(onlySQLite), short(onlySQLite)))
		r.fix(Fix{Summary: "move them to PostgreSQL (stop the service first)", Commands: []string{"wactl sessions migrate --to postgres"}})
	case !active && len(inPG) > 0:
		ids := make([]string, 0, len(inPG))
		for id := range inPG {
			ids = append(ids, id)
		}
		r.warn(fmt.Sprintf("%d account(s) only in PostgreSQL, which sessions.store: sqlite does not read: %s", len(inPG), short(ids)))
		r.fix(Fix{Summary: "set sessions.store: postgres, or move them here (stop the service first)", Commands: []string{"wactl sessions migrate --to sqlite"}})
	}
	if len(both) > 0 {
		r.note("%d account(s) in both stores (a migration whose source was kept): only the %s copy is used", len(both), c.Sessions.Store)
	}
	if r.Status == "" {
		r.Status, r.Summary = OK, fmt.Sprintf("PostgreSQL %s reachable; %d account(s), %d paired", rep.ServerVersion, len(rep.Accounts), paired)
	}
	return r
}

// sqliteAccountIDs lists the account directories of the SQLite store
// without opening (or creating) anything.
func sqliteAccountIDs(root string) []string {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil
	}
	var ids []string
	for _, e := range entries {
		if e.IsDir() && sessions.ValidAccountID(e.Name()) == nil {
			ids = append(ids, e.Name())
		}
	}
	return ids
}

func short(ids []string) string {
	if len(ids) > 3 {
		return strings.Join(ids[:3], ", ") + fmt.Sprintf(" and %d more", len(ids)-3)
	}
	return strings.Join(ids, ", ")
}
