package sessions

import (
	"context"
	"fmt"
	"sort"

	"github.com/jackc/pgx/v5"
)

// PostgresReport is what InspectPostgres found, for doctor.
type PostgresReport struct {
	ServerVersion string
	// WhatsmeowSchema is whatsmeow_version's version; 0 when the store was
	// never set up (no tables yet). WhatsmeowKnown is this wactl's.
	WhatsmeowSchema int
	WhatsmeowKnown  int
	WactlSchema     int // wactl_version; 0 when never set up
	Accounts        []PostgresAccount
	OrphanDevices   []string
}

// PostgresAccount is one wactl_accounts row.
type PostgresAccount struct {
	ID     string
	Paired bool // its device is in whatsmeow_device
	InUse  bool // a process holds its advisory lock
}

// InspectPostgres reads the PostgreSQL device store without changing it:
// no schema set-up, no locks taken, one connection, every statement bounded
// by the timeout.
func InspectPostgres(ctx context.Context, o PostgresOptions) (*PostgresReport, error) {
	if o.Timeout <= 0 {
		o.Timeout = defaultPGTimeout
	}
	cfg, err := pgConfig(o)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*o.Timeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL unreachable: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rep := &PostgresReport{WhatsmeowKnown: WhatsmeowSchemaVersion()}
	if err := conn.QueryRow(ctx, "SHOW server_version").Scan(&rep.ServerVersion); err != nil {
		return nil, fmt.Errorf("PostgreSQL: %w", err)
	}
	exists := func(table string) (bool, error) {
		var ok bool
		err := conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", table).Scan(&ok)
		return ok, err
	}
	ok, err := exists("whatsmeow_version")
	if err != nil {
		return nil, err
	}
	if ok {
		if err := conn.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM whatsmeow_version").Scan(&rep.WhatsmeowSchema); err != nil {
			return nil, fmt.Errorf("read whatsmeow_version: %w", err)
		}
	}
	if ok, err = exists("wactl_accounts"); err != nil || !ok {
		return rep, err
	}
	if err := conn.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM wactl_version").Scan(&rep.WactlSchema); err != nil {
		return nil, fmt.Errorf("read wactl_version: %w", err)
	}
	rows, err := conn.Query(ctx, `SELECT a.account_id, d.jid IS NOT NULL
		FROM wactl_accounts a LEFT JOIN whatsmeow_device d ON d.jid = a.metadata->>'pairedJid' ORDER BY a.account_id`)
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	for rows.Next() {
		var a PostgresAccount
		if err := rows.Scan(&a.ID, &a.Paired); err != nil {
			rows.Close()
			return nil, err
		}
		rep.Accounts = append(rep.Accounts, a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	held := map[int32]bool{}
	lrows, err := conn.Query(ctx, `SELECT objid::bigint FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 2
		AND classid::bigint = $1 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`, int64(uint32(pgLockClass)))
	if err != nil {
		return nil, err
	}
	for lrows.Next() {
		var k int64
		if err := lrows.Scan(&k); err != nil {
			lrows.Close()
			return nil, err
		}
		held[int32(uint32(k))] = true
	}
	lrows.Close()
	for i := range rep.Accounts {
		rep.Accounts[i].InUse = held[accountLockKey(rep.Accounts[i].ID)]
	}
	orows, err := conn.Query(ctx, `SELECT d.jid FROM whatsmeow_device d
		WHERE NOT EXISTS (SELECT 1 FROM wactl_accounts a WHERE a.metadata->>'pairedJid' = d.jid)
		  AND NOT EXISTS (SELECT 1 FROM wactl_removed_accounts r WHERE r.metadata->>'pairedJid' = d.jid)`)
	if err != nil {
		return nil, err
	}
	for orows.Next() {
		var j string
		if err := orows.Scan(&j); err != nil {
			orows.Close()
			return nil, err
		}
		rep.OrphanDevices = append(rep.OrphanDevices, j)
	}
	orows.Close()
	sort.Strings(rep.OrphanDevices)
	return rep, orows.Err()
}
