package sessions

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
)

// The Snapshotter side of the PostgreSQL device store: every account's
// rows live in one database, so an account is its wactl_accounts row plus
// the whatsmeow rows keyed by its device JID (and the shared LID map).

func (p *pgBackend) snapshotIDs(ctx context.Context) ([]string, error) {
	ctx, cancel := p.ctx(ctx)
	defer cancel()
	rows, err := p.db.QueryContext(ctx, `SELECT account_id FROM wactl_accounts ORDER BY account_id`)
	if err != nil {
		return nil, fmt.Errorf("list accounts in PostgreSQL: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		if ValidAccountID(id) == nil {
			ids = append(ids, id)
		}
	}
	return ids, rows.Err()
}

// export reads the account in one REPEATABLE READ, read-only transaction:
// metadata and rows from one snapshot of the database, without locks that
// would stop the process driving the account.
func (p *pgBackend) export(ctx context.Context, s *Store, id string) (*AccountSnapshot, error) {
	ctx, cancel := p.ctx(ctx)
	defer cancel()
	tx, err := p.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("read %s from PostgreSQL: %w", id, err)
	}
	defer tx.Rollback()
	return exportPGTx(ctx, tx, s, id)
}

func exportPGTx(ctx context.Context, tx *sql.Tx, s *Store, id string) (*AccountSnapshot, error) {
	snap := &AccountSnapshot{AccountID: id, SourceStore: StoreKindPostgres, SnapshotAt: s.now().UTC(), Tables: []Table{}}
	var data []byte
	err := tx.QueryRowContext(ctx, `SELECT metadata FROM wactl_accounts WHERE account_id = $1`, id).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %s", ErrNoAccount, id)
	}
	if err != nil {
		return nil, fmt.Errorf("read metadata of %s from PostgreSQL: %w", id, err)
	}
	if snap.Metadata, err = decodeMetadata(data, id); err != nil {
		return nil, err
	}
	if snap.WhatsmeowSchema, err = readSchemaVersion(ctx, tx); err != nil {
		return nil, err
	}
	if jid := snap.Metadata.PairedJID; jid != "" {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM whatsmeow_device WHERE jid = $1`, jid).Scan(&n); err != nil {
			return nil, fmt.Errorf("read device of %s from PostgreSQL: %w", id, err)
		}
		if n > 0 {
			if snap.Tables, err = ExportDeviceTables(ctx, tx, jid); err != nil {
				return nil, fmt.Errorf("device store of %s: %w", id, err)
			}
			snap.DeviceJID = jid
		}
	}
	snap.seal()
	return snap, nil
}

// importAccount replaces the account in one transaction: the old device's
// rows go (whatsmeow's foreign keys cascade), the snapshot's rows and
// metadata come in, the rows are read back inside the transaction and
// compared, and only then is it committed. PostgreSQL cannot tell when an
// account last changed, so an existing account that differs is "newer"
// unless forced (ModifiedAt is zero). A replaced account is kept as a
// plaintext snapshot file, mode 0600, under <root>/removed/, as the SQLite
// store keeps the replaced directory.
func (p *pgBackend) importAccount(ctx context.Context, s *Store, snap *AccountSnapshot, check ImportCheck) (*ImportResult, error) {
	id := snap.AccountID
	_, err := p.get(id)
	exists := err == nil
	if err != nil && !errors.Is(err, ErrNoAccount) {
		return nil, err
	}
	var local *LocalAccount
	if exists {
		lock, err := s.Lock(id)
		if err != nil {
			return nil, err
		}
		defer lock.Release()
		ls, err := p.export(ctx, s, id)
		if err != nil {
			return nil, fmt.Errorf("read the local account %s before replacing it: %w", id, err)
		}
		local = &LocalAccount{Snapshot: ls}
	}
	decision, err := check(local)
	if err != nil {
		return nil, err
	}
	if decision == ImportSkip {
		return &ImportResult{Skipped: true}, nil
	}
	meta := snap.Metadata
	if meta == nil {
		meta = &Account{SchemaVersion: SchemaVersion, ID: id, CreatedAt: snap.SnapshotAt}
	}
	if snap.DeviceJID != "" && meta.PairedJID != snap.DeviceJID {
		// PostgreSQL finds an account's device through its metadata.
		m := *meta
		m.PairedJID = snap.DeviceJID
		meta = &m
	}
	metaJSON, err := json.Marshal(meta)
	if err != nil {
		return nil, err
	}

	ctx, cancel := p.ctx(ctx)
	defer cancel()
	tx, err := p.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelSerializable})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	for _, jid := range []string{snapDevice(local), snap.DeviceJID} {
		if jid == "" {
			continue
		}
		// privacy tokens have no foreign key to the device; the rest cascade.
		if _, err := tx.ExecContext(ctx, `DELETE FROM whatsmeow_privacy_tokens WHERE our_jid = $1`, jid); err != nil {
			return nil, fmt.Errorf("restore %s: %w", id, err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM whatsmeow_device WHERE jid = $1`, jid); err != nil {
			return nil, fmt.Errorf("restore %s: %w", id, err)
		}
	}
	if err := ImportDeviceTables(ctx, tx, snap.Tables); err != nil {
		return nil, fmt.Errorf("restore %s: %w", id, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO wactl_accounts (account_id, metadata) VALUES ($1, $2)
		ON CONFLICT (account_id) DO UPDATE SET metadata = EXCLUDED.metadata, updated_at = now()`, id, metaJSON); err != nil {
		return nil, fmt.Errorf("restore %s: metadata: %w", id, err)
	}
	back, err := exportPGTx(ctx, tx, s, id)
	if err != nil {
		return nil, fmt.Errorf("restore %s: read back: %w", id, err)
	}
	if err := accountMatches(back, snap); err != nil {
		return nil, fmt.Errorf("restore %s: what was written differs from the snapshot (%v); nothing was replaced", id, err)
	}
	res := &ImportResult{}
	if local != nil {
		res.Replaced = true
		dest, err := s.keepReplacedSnapshot(local.Snapshot)
		if err != nil {
			return nil, fmt.Errorf("restore %s: keep the replaced copy: %w; nothing was replaced", id, err)
		}
		res.MovedTo = dest
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("restore %s: commit: %w", id, err)
	}
	return res, nil
}

func snapDevice(l *LocalAccount) string {
	if l == nil || l.Snapshot == nil {
		return ""
	}
	return l.Snapshot.DeviceJID
}

// keepReplacedSnapshot writes a replaced account, unencrypted (as the
// SQLite store keeps a replaced directory), to <root>/removed/.
func (s *Store) keepReplacedSnapshot(a *AccountSnapshot) (string, error) {
	removed := filepath.Join(s.root, removedDirName)
	if _, err := mkdirPrivate(removed); err != nil {
		return "", err
	}
	stamp := s.now().UTC().Format("20060102T150405Z")
	dest := filepath.Join(removed, stamp+"-"+a.AccountID+".before-restore.snapshot")
	for n := 2; fileExists(dest); n++ {
		dest = filepath.Join(removed, fmt.Sprintf("%s-%s.before-restore.%d.snapshot", stamp, a.AccountID, n))
	}
	snap := &Snapshot{Format: SnapshotFormat, FormatVersion: SnapshotFormatVersion, CreatedAt: a.SnapshotAt, Instance: s.instance, Accounts: []AccountSnapshot{*a}}
	if _, err := WriteBackup(dest, snap, Encryption{Plaintext: true}); err != nil {
		return "", err
	}
	return dest, nil
}

// accountMatches is sameAccount for a store whose shared tables hold other
// accounts' rows too: the account's own tables must be equal, and every row
// of a shared table in want must be in got.
func accountMatches(got, want *AccountSnapshot) error {
	if got.DeviceJID != want.DeviceJID {
		return fmt.Errorf("device %q, read back %q", want.DeviceJID, got.DeviceJID)
	}
	if want.Metadata != nil {
		if got.Metadata == nil {
			return errors.New("account metadata missing")
		}
		a, b := *want.Metadata, *got.Metadata
		if want.DeviceJID != "" {
			a.PairedJID = want.DeviceJID
		}
		am, _ := json.Marshal(a)
		bm, _ := json.Marshal(b)
		if string(am) != string(bm) {
			return errors.New("account metadata differs")
		}
	}
	byName := map[string]Table{}
	for _, t := range got.Tables {
		byName[t.Name] = t
	}
	for _, w := range want.Tables {
		g := byName[w.Name]
		spec := specFor(w.Name)
		if spec != nil && spec.deviceCol == "" {
			have := map[string]bool{}
			for _, r := range g.Rows {
				have[tablesDigest([]Table{{Name: w.Name, Columns: w.Columns, Rows: [][]any{r}}})] = true
			}
			for _, r := range w.Rows {
				if !have[tablesDigest([]Table{{Name: w.Name, Columns: w.Columns, Rows: [][]any{r}}})] {
					return fmt.Errorf("%s lacks a row of the snapshot", w.Name)
				}
			}
			continue
		}
		if len(w.Rows) == 0 && len(g.Rows) == 0 {
			continue
		}
		if tablesDigest([]Table{w}) != tablesDigest([]Table{{Name: g.Name, Columns: g.Columns, Rows: g.Rows}}) {
			return fmt.Errorf("%s: %d rows expected, %d read back", w.Name, len(w.Rows), len(g.Rows))
		}
	}
	return nil
}
