package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/wactl/wactl/pkg/store"
)

// accountDoc is the stored account, with the contract's field names so the
// JSON reads like the Firestore document. Keys wactl does not own are kept
// as they were (see PutAccount).
type accountDoc struct {
	AccountID            string    `json:"accountId"`
	Name                 string    `json:"name"`
	PhoneE164            string    `json:"phoneE164"`
	Status               string    `json:"status"`
	QRCode               string    `json:"qrCode"`
	QRUpdatedAt          time.Time `json:"qrUpdatedAt"`
	PairingCode          string    `json:"pairingCode"`
	CreatedAt            time.Time `json:"createdAt"`
	UpdatedAt            time.Time `json:"updatedAt"`
	WAJid                string    `json:"waJid"`
	LastConnectedAt      time.Time `json:"lastConnectedAt"`
	LastDisconnectedAt   time.Time `json:"lastDisconnectedAt"`
	LastDisconnectReason string    `json:"lastDisconnectReason"`
	LastDisconnectCode   int       `json:"lastDisconnectCode"`
	LastError            string    `json:"lastError"`
	LastErrorAt          time.Time `json:"lastErrorAt"`
	RequiresQR           bool      `json:"requiresQR"`
	LogoutCount          int       `json:"logoutCount"`
	DeletedAt            time.Time `json:"deletedAt"`
	Worker               workerDoc `json:"worker"`
}

type workerDoc struct {
	Service    string    `json:"service"`
	InstanceID string    `json:"instanceId"`
	Version    string    `json:"version"`
	Commit     string    `json:"commit"`
	UptimeSec  float64   `json:"uptime"`
	BootTs     time.Time `json:"bootTs"`
}

func toDoc(a store.Account) accountDoc {
	return accountDoc{
		AccountID: a.ID, Name: a.Name, PhoneE164: a.PhoneE164, Status: a.Status, QRCode: a.QRCode,
		QRUpdatedAt: a.QRUpdatedAt, PairingCode: a.PairingCode, CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt,
		WAJid: a.WAJid, LastConnectedAt: a.LastConnectedAt, LastDisconnectedAt: a.LastDisconnectedAt,
		LastDisconnectReason: a.LastDisconnectReason, LastDisconnectCode: a.LastDisconnectCode,
		LastError: a.LastError, LastErrorAt: a.LastErrorAt, RequiresQR: a.RequiresQR, LogoutCount: a.LogoutCount,
		DeletedAt: a.DeletedAt,
		Worker: workerDoc{Service: a.Worker.Service, InstanceID: a.Worker.InstanceID, Version: a.Worker.Version,
			Commit: a.Worker.Commit, UptimeSec: a.Worker.Uptime.Seconds(), BootTs: a.Worker.BootTs},
	}
}

func fromDoc(d accountDoc, epoch int64) store.Account {
	return store.Account{
		ID: d.AccountID, Name: d.Name, PhoneE164: d.PhoneE164, Status: d.Status, QRCode: d.QRCode,
		QRUpdatedAt: d.QRUpdatedAt, PairingCode: d.PairingCode, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt,
		WAJid: d.WAJid, LastConnectedAt: d.LastConnectedAt, LastDisconnectedAt: d.LastDisconnectedAt,
		LastDisconnectReason: d.LastDisconnectReason, LastDisconnectCode: d.LastDisconnectCode,
		LastError: d.LastError, LastErrorAt: d.LastErrorAt, RequiresQR: d.RequiresQR, LogoutCount: d.LogoutCount,
		DeletedAt: d.DeletedAt,
		Worker: store.Worker{Service: d.Worker.Service, InstanceID: d.Worker.InstanceID, Version: d.Worker.Version,
			Commit: d.Worker.Commit, Uptime: time.Duration(d.Worker.UptimeSec * float64(time.Second)), BootTs: d.Worker.BootTs},
		Epoch: epoch,
	}
}

// PutAccount writes the fields wactl owns, keeps createdAt once set and
// keeps keys of other writers; a non-zero epoch older than the stored one
// fails with store.ErrFenced.
func (s *Store) PutAccount(ctx context.Context, a store.Account) error {
	if a.ID == "" {
		return errors.New("sqlite store: account without an id")
	}
	var ferr error
	if a.Epoch, ferr = s.heldEpoch("account "+a.ID, a.Epoch); ferr != nil {
		return ferr
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		var epoch int64
		var data string
		err := tx.QueryRow(`SELECT epoch, data FROM accounts WHERE id = ?`, a.ID).Scan(&epoch, &data)
		exists := err == nil
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if a.Epoch != 0 && a.Epoch < epoch {
			return fmt.Errorf("account %s: write with lease epoch %d, stored epoch %d: %w", a.ID, a.Epoch, epoch, store.ErrFenced)
		}
		merged := map[string]json.RawMessage{}
		if exists {
			if err := json.Unmarshal([]byte(data), &merged); err != nil {
				return fmt.Errorf("account %s: stored data unreadable: %w", a.ID, err)
			}
		}
		if created, ok := merged["createdAt"]; ok {
			var t time.Time
			if json.Unmarshal(created, &t) == nil && !t.IsZero() {
				a.CreatedAt = t
			}
		}
		if a.CreatedAt.IsZero() {
			a.CreatedAt = s.now()
		}
		var del time.Time
		if raw, ok := merged["deletedAt"]; ok && json.Unmarshal(raw, &del) == nil && !del.IsZero() && a.DeletedAt.IsZero() {
			if !reAdded(a, del) {
				// The deleted account's last status, written late: still deleted.
				a.Status, a.DeletedAt = "deleted", del
			}
		}
		own, err := json.Marshal(toDoc(a))
		if err != nil {
			return err
		}
		var ownMap map[string]json.RawMessage
		if err := json.Unmarshal(own, &ownMap); err != nil {
			return err
		}
		for k, v := range ownMap {
			merged[k] = v
		}
		out, err := json.Marshal(merged)
		if err != nil {
			return err
		}
		_, err = tx.Exec(`INSERT INTO accounts (id, epoch, data) VALUES (?, ?, ?)
ON CONFLICT (id) DO UPDATE SET epoch = MAX(accounts.epoch, excluded.epoch), data = excluded.data`, a.ID, a.Epoch, string(out))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite store: put account: %w", err)
	}
	return nil
}

func decodeAccount(data string, epoch int64) (store.Account, error) {
	var d accountDoc
	if err := json.Unmarshal([]byte(data), &d); err != nil {
		return store.Account{}, fmt.Errorf("sqlite store: account data unreadable: %w", err)
	}
	return fromDoc(d, epoch), nil
}

// GetAccount returns one account.
func (s *Store) GetAccount(ctx context.Context, id string) (store.Account, error) {
	var data string
	var epoch int64
	err := s.rdb.QueryRowContext(ctx, `SELECT data, epoch FROM accounts WHERE id = ?`, id).Scan(&data, &epoch)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Account{}, fmt.Errorf("sqlite store: account %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Account{}, fmt.Errorf("sqlite store: %w", err)
	}
	return decodeAccount(data, epoch)
}

// ListAccounts returns every account, soft-deleted ones included, by id.
func (s *Store) ListAccounts(ctx context.Context) ([]store.Account, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT data, epoch FROM accounts ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: %w", err)
	}
	defer rows.Close()
	var out []store.Account
	for rows.Next() {
		var data string
		var epoch int64
		if err := rows.Scan(&data, &epoch); err != nil {
			return nil, fmt.Errorf("sqlite store: %w", err)
		}
		a, err := decodeAccount(data, epoch)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// reAddGrace separates a re-add from the deleted account's own last status
// write, which the daemon may build a moment before or after deletedAt.
const reAddGrace = 2 * time.Second

// reAdded reports whether a, written over an account deleted at del, is
// the account added again (its zero DeletedAt then clears the deletion):
// a live status built well after the deletion, or with no time. A later
// status write clears it anyway, so clock skew only delays the clearing.
func reAdded(a store.Account, del time.Time) bool {
	return a.Status != "deleted" && (a.UpdatedAt.IsZero() || a.UpdatedAt.After(del.Add(reAddGrace)))
}
