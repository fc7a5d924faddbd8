package sessions

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"

	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
)

// ProblemOrphanDevice is a whatsmeow device in PostgreSQL that no account,
// live or removed, names (a pairing whose metadata write failed, or rows
// edited by hand).
const ProblemOrphanDevice ProblemKind = "orphan-device"

func (p *pgBackend) create(s *Store, n NewAccount) (*Account, error) {
	a := &Account{SchemaVersion: SchemaVersion, ID: n.ID, Name: n.Name, Phone: n.Phone, CreatedAt: s.now().UTC()}
	data, err := json.Marshal(a)
	if err != nil {
		return nil, err
	}
	ctx, cancel := p.ctx(context.Background())
	defer cancel()
	res, err := p.db.ExecContext(ctx, `INSERT INTO wactl_accounts (account_id, metadata) VALUES ($1, $2) ON CONFLICT (account_id) DO NOTHING`, n.ID, data)
	if err != nil {
		return nil, fmt.Errorf("create account %s in PostgreSQL: %w", n.ID, err)
	}
	if k, _ := res.RowsAffected(); k == 0 {
		existing, err := p.get(n.ID)
		if err != nil {
			return nil, err
		}
		return existing, fmt.Errorf("%w: %s", ErrAccountExists, n.ID)
	}
	s.log.Info("account created", "account", n.ID, "store", "postgres")
	return a, nil
}

func (p *pgBackend) get(id string) (*Account, error) {
	ctx, cancel := p.ctx(context.Background())
	defer cancel()
	var data []byte
	err := p.db.QueryRowContext(ctx, `SELECT metadata FROM wactl_accounts WHERE account_id = $1`, id).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %s", ErrNoAccount, id)
	}
	if err != nil {
		return nil, fmt.Errorf("read metadata of %s from PostgreSQL: %w", id, err)
	}
	return decodeMetadata(data, id)
}

func decodeMetadata(data []byte, id string) (*Account, error) {
	var a Account
	if err := json.Unmarshal(data, &a); err != nil {
		return nil, fmt.Errorf("metadata of %s in PostgreSQL is not valid JSON: %w", id, err)
	}
	if a.ID != id {
		return nil, fmt.Errorf("metadata of %s names account %q: the row was edited by hand", id, printable(a.ID))
	}
	if a.SchemaVersion > SchemaVersion {
		return nil, fmt.Errorf("metadata of %s has schema version %d, newer than this wactl understands (%d): upgrade wactl", id, a.SchemaVersion, SchemaVersion)
	}
	return &a, nil
}

func (p *pgBackend) writeMetadata(a *Account) error {
	data, err := json.Marshal(a)
	if err != nil {
		return err
	}
	ctx, cancel := p.ctx(context.Background())
	defer cancel()
	res, err := p.db.ExecContext(ctx, `UPDATE wactl_accounts SET metadata = $2, updated_at = now() WHERE account_id = $1`, a.ID, data)
	if err != nil {
		return fmt.Errorf("write metadata of %s to PostgreSQL: %w", a.ID, err)
	}
	if k, _ := res.RowsAffected(); k == 0 {
		return fmt.Errorf("%w: %s", ErrNoAccount, a.ID)
	}
	return nil
}

// lock takes the account's advisory lock on the dedicated connection,
// without waiting; *InUseError when another session holds it.
func (p *pgBackend) lock(s *Store, id string) (*Lock, error) {
	if _, err := p.get(id); err != nil {
		return nil, err
	}
	ctx, cancel := p.ctx(context.Background())
	defer cancel()
	p.lockMu.Lock()
	defer p.lockMu.Unlock()
	if p.held[id] {
		return nil, &InUseError{Account: id, Holder: &Holder{PID: os.Getpid(), Instance: s.instance}}
	}
	conn, err := p.lockConnection(ctx)
	if err != nil {
		return nil, err
	}
	var ok bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1, $2)", pgLockClass, accountLockKey(id)).Scan(&ok); err != nil {
		return nil, fmt.Errorf("lock account %s in PostgreSQL: %w", id, err)
	}
	if !ok {
		return nil, &InUseError{Account: id, Holder: p.holder(ctx, id)}
	}
	p.held[id] = true
	// The identity only names the holder for operators; failing to write
	// it does not make the lock less held.
	if _, err := p.db.ExecContext(ctx, `UPDATE wactl_accounts SET lock_pid = $2, lock_instance = $3, lock_since = $4 WHERE account_id = $1`,
		id, os.Getpid(), s.instance, s.now().UTC()); err != nil {
		s.log.Warn("account lock taken but its holder not recorded", "account", id, "err", err)
	}
	return &Lock{account: id, release: func() error { return p.unlock(id) }}, nil
}

func (p *pgBackend) holder(ctx context.Context, id string) *Holder {
	var pid sql.NullInt64
	var inst sql.NullString
	var since sql.NullTime
	if err := p.db.QueryRowContext(ctx, `SELECT lock_pid, lock_instance, lock_since FROM wactl_accounts WHERE account_id = $1`, id).Scan(&pid, &inst, &since); err != nil || !pid.Valid {
		return nil
	}
	return &Holder{PID: int(pid.Int64), Instance: inst.String, Since: since.Time}
}

func (p *pgBackend) unlock(id string) error {
	ctx, cancel := p.ctx(context.Background())
	defer cancel()
	p.lockMu.Lock()
	defer p.lockMu.Unlock()
	if !p.held[id] {
		return nil
	}
	delete(p.held, id)
	_, _ = p.db.ExecContext(ctx, `UPDATE wactl_accounts SET lock_pid = NULL, lock_instance = NULL, lock_since = NULL WHERE account_id = $1 AND lock_pid = $2`, id, os.Getpid())
	if p.lockConn == nil || p.lockConn.IsClosed() {
		return nil // the session is gone, and its locks with it
	}
	if _, err := p.lockConn.Exec(ctx, "SELECT pg_advisory_unlock($1, $2)", pgLockClass, accountLockKey(id)); err != nil {
		// Close the connection rather than leave a lock behind; the next
		// lock reconnects and takes back the others.
		p.lockConn.Close(context.Background())
		p.lockConn = nil
		return fmt.Errorf("unlock account %s: %w", id, err)
	}
	return nil
}

// openDevice opens the account's device from the shared container: the
// device its metadata names, or a new unpaired one.
func (p *pgBackend) openDevice(ctx context.Context, s *Store, id string) (_ *Device, err error) {
	lock, err := p.lock(s, id)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			lock.Release()
		}
	}()
	acct, err := p.get(id)
	if err != nil {
		return nil, err
	}
	var dev *store.Device
	if acct.PairedJID != "" {
		jid, perr := types.ParseJID(acct.PairedJID)
		if perr != nil {
			return nil, fmt.Errorf("metadata of %s names device %q: %w", id, printable(acct.PairedJID), perr)
		}
		cctx, cancel := p.ctx(ctx)
		dev, err = p.container.GetDevice(cctx, jid)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("read device of %s from PostgreSQL: %w", id, err)
		}
		if dev == nil {
			s.log.Warn("account's device is not in PostgreSQL; it must be paired again", "account", id, "device", acct.PairedJID)
		}
	}
	if dev == nil {
		dev = p.container.NewDevice()
	}
	return &Device{Account: *acct, Container: p.container, Store: dev, lock: lock, shared: true}, nil
}

// scan lists the accounts in PostgreSQL for List and Inventory.
func (p *pgBackend) scan(ctx context.Context, s *Store) (*Inventory, error) {
	ctx, cancel := p.ctx(ctx)
	defer cancel()
	inv := &Inventory{Root: "postgres", Accounts: []AccountStatus{}, Problems: []Problem{}}
	rows, err := p.db.QueryContext(ctx, `
		SELECT a.account_id, a.metadata, d.jid, a.lock_pid, a.lock_instance, a.lock_since
		FROM wactl_accounts a
		LEFT JOIN whatsmeow_device d ON d.jid = a.metadata->>'pairedJid'
		ORDER BY a.account_id`)
	if err != nil {
		return nil, fmt.Errorf("list accounts in PostgreSQL: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var meta []byte
		var jid sql.NullString
		var pid sql.NullInt64
		var inst sql.NullString
		var since sql.NullTime
		if err := rows.Scan(&id, &meta, &jid, &pid, &inst, &since); err != nil {
			return nil, fmt.Errorf("list accounts in PostgreSQL: %w", err)
		}
		st := AccountStatus{ID: id}
		inv.Counts.AccountDirs++
		if a, err := decodeMetadata(meta, id); err == nil {
			st.Account = a
		} else {
			inv.problem(ProblemBadMetadata, "postgres:wactl_accounts/"+id, id, err.Error())
		}
		switch {
		case jid.Valid:
			st.Store, st.DeviceJID = StorePaired, jid.String
			inv.Counts.Paired++
		case st.Account != nil && st.Account.PairedJID != "":
			st.Store, st.StoreError = StoreUnpaired, "device "+st.Account.PairedJID+" is not in whatsmeow_device"
			inv.Counts.Unpaired++
		default:
			st.Store = StoreUnpaired
			inv.Counts.Unpaired++
		}
		if pid.Valid {
			st.Holder = &Holder{PID: int(pid.Int64), Instance: inst.String, Since: since.Time}
		}
		inv.Accounts = append(inv.Accounts, st)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list accounts in PostgreSQL: %w", err)
	}
	rows.Close()
	held, err := p.heldLocks(ctx)
	if err != nil {
		return nil, err
	}
	for i := range inv.Accounts {
		st := &inv.Accounts[i]
		st.InUse = held[accountLockKey(st.ID)]
		if st.InUse {
			inv.Counts.InUse++
		} else {
			st.Holder = nil // the recorded identity of a holder that is gone
		}
	}
	if err := p.db.QueryRowContext(ctx, `SELECT count(*) FROM wactl_removed_accounts`).Scan(&inv.Counts.Removed); err != nil {
		return nil, fmt.Errorf("count removed accounts in PostgreSQL: %w", err)
	}
	orphans, err := p.orphanDevices(ctx)
	if err != nil {
		return nil, err
	}
	for _, j := range orphans {
		inv.problem(ProblemOrphanDevice, "postgres:whatsmeow_device/"+j, "",
			"a paired device no account names (a pairing whose metadata write failed?); it is not restored")
	}
	return inv, nil
}

// heldLocks returns the second keys of wactl's account advisory locks that
// any session holds now. It takes no lock itself.
func (p *pgBackend) heldLocks(ctx context.Context) (map[int32]bool, error) {
	rows, err := p.db.QueryContext(ctx, `SELECT objid::bigint FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND objsubid = 2 AND classid::bigint = $1 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
		int64(uint32(pgLockClass)))
	if err != nil {
		return nil, fmt.Errorf("read account locks in PostgreSQL: %w", err)
	}
	defer rows.Close()
	held := map[int32]bool{}
	for rows.Next() {
		var k int64
		if err := rows.Scan(&k); err != nil {
			return nil, err
		}
		held[int32(uint32(k))] = true
	}
	return held, rows.Err()
}

func (p *pgBackend) orphanDevices(ctx context.Context) ([]string, error) {
	rows, err := p.db.QueryContext(ctx, `SELECT d.jid FROM whatsmeow_device d
		WHERE NOT EXISTS (SELECT 1 FROM wactl_accounts a WHERE a.metadata->>'pairedJid' = d.jid)
		  AND NOT EXISTS (SELECT 1 FROM wactl_removed_accounts r WHERE r.metadata->>'pairedJid' = d.jid) ORDER BY d.jid`)
	if err != nil {
		return nil, fmt.Errorf("list devices in PostgreSQL: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var j string
		if err := rows.Scan(&j); err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	sort.Strings(out)
	return out, rows.Err()
}

// remove takes an account out of service under its lock: its metadata moves
// to wactl_removed_accounts and its device rows stay (like removed/ keeps
// the directory); Purge deletes the device from whatsmeow's tables too.
func (p *pgBackend) remove(s *Store, id string, opts RemoveOptions) (string, error) {
	lock, err := p.lock(s, id)
	if err != nil {
		return "", err
	}
	defer lock.Release()
	acct, err := p.get(id)
	if err != nil {
		return "", err
	}
	ctx, cancel := p.ctx(context.Background())
	defer cancel()
	if opts.Purge && acct.PairedJID != "" {
		if jid, err := types.ParseJID(acct.PairedJID); err == nil {
			dev, err := p.container.GetDevice(ctx, jid)
			if err != nil {
				return "", fmt.Errorf("read device of %s: %w", id, err)
			}
			if dev != nil {
				if err := p.container.DeleteDevice(ctx, dev); err != nil {
					return "", fmt.Errorf("purge device of %s: %w", id, err)
				}
			}
		}
	}
	tx, err := p.db.BeginTx(ctx, nil)
	if err != nil {
		return "", err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO wactl_removed_accounts (account_id, removed_at, metadata)
		SELECT account_id, $2, metadata FROM wactl_accounts WHERE account_id = $1`, id, s.now().UTC()); err != nil {
		return "", fmt.Errorf("remove %s: %w", id, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM wactl_accounts WHERE account_id = $1`, id); err != nil {
		return "", fmt.Errorf("remove %s: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return "", fmt.Errorf("remove %s: %w", id, err)
	}
	s.log.Info("account removed", "account", id, "store", "postgres", "purge", opts.Purge)
	if opts.Purge {
		return "", nil
	}
	return "postgres:wactl_removed_accounts/" + id, nil
}
