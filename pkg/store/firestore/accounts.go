package firestore

import (
	"context"
	"fmt"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/wactl/wactl/pkg/store"
)

// accountFields are the fields PutAccount merges. Times are written only
// when set, so a caller updating the status does not erase lastConnectedAt.
func accountFields(a store.Account) map[string]any {
	d := map[string]any{
		"accountId":            a.ID,
		"name":                 a.Name,
		"phoneE164":            a.PhoneE164,
		"status":               a.Status,
		"qrCode":               orNull(a.QRCode),
		"pairingCode":          a.PairingCode,
		"waJid":                a.WAJid,
		"lastDisconnectReason": a.LastDisconnectReason,
		"lastDisconnectCode":   int64(a.LastDisconnectCode),
		"lastError":            orNull(a.LastError),
		"requiresQR":           a.RequiresQR,
		"logoutCount":          int64(a.LogoutCount),
		"updatedAt":            firestore.ServerTimestamp,
		"worker": map[string]any{
			"service":    a.Worker.Service,
			"instanceId": a.Worker.InstanceID,
			"version":    a.Worker.Version,
			"commit":     a.Worker.Commit,
			"uptime":     int64(a.Worker.Uptime / time.Second),
			"bootTs":     a.Worker.BootTs,
		},
	}
	for k, t := range map[string]time.Time{
		"qrUpdatedAt":        a.QRUpdatedAt,
		"lastConnectedAt":    a.LastConnectedAt,
		"lastDisconnectedAt": a.LastDisconnectedAt,
		"lastErrorAt":        a.LastErrorAt,
		"deletedAt":          a.DeletedAt,
	} {
		if !t.IsZero() {
			d[k] = t
		}
	}
	if a.Epoch != 0 {
		d["leaseEpoch"] = a.Epoch
	}
	return d
}

// PutAccount merges a's fields into accounts/{id}, refusing (ErrFenced) a
// write whose epoch is older than the stored leaseEpoch and, in a fenced
// store, any write while this process holds no epoch (fence.go).
func (s *Store) PutAccount(ctx context.Context, a store.Account) error {
	if a.ID == "" {
		return &PermanentError{fmt.Errorf("store: account without id")}
	}
	epoch, fenced, err := s.heldEpoch("account "+a.ID, a.Epoch)
	if err != nil {
		return err
	}
	a.Epoch = epoch
	ref := s.c.Collection(colAccounts).Doc(a.ID)
	backoff := 5 * time.Millisecond
	for attempt := 0; ; attempt++ {
		snap, err := ref.Get(ctx)
		switch {
		case isNotFound(err):
			d := accountFields(a)
			d["createdAt"] = createdAtISO(a.CreatedAt, s.now())
			_, err = ref.Create(ctx, d)
		case err != nil:
			s.noteErr(err)
			return fmt.Errorf("firestore: read account %s: %w", a.ID, err)
		default:
			cur := snap.Data()
			if err := olderThanDoc("account "+a.ID, a.Epoch, getInt(cur, "leaseEpoch")); err != nil {
				return err
			}
			if fenced {
				// Re-ask just before writing: the read may have taken long.
				if _, _, err := s.heldEpoch("account "+a.ID, a.Epoch); err != nil {
					return err
				}
			}
			d := accountFields(a)
			if _, ok := cur["createdAt"]; !ok {
				d["createdAt"] = createdAtISO(a.CreatedAt, s.now())
			}
			if del := getTime(cur, "deletedAt"); !del.IsZero() && a.DeletedAt.IsZero() {
				if reAdded(a, del) {
					d["deletedAt"] = firestore.Delete
				} else {
					d["status"] = "deleted" // the deleted account's last status, written late
				}
			}
			up := make([]firestore.Update, 0, len(d))
			for k, v := range d {
				up = append(up, firestore.Update{Path: k, Value: v})
			}
			_, err = ref.Update(ctx, up, firestore.LastUpdateTime(snap.UpdateTime))
		}
		if err == nil {
			return nil
		}
		if !isConflict(err) || attempt >= 50 {
			s.noteErr(err)
			return fmt.Errorf("firestore: write account %s: %w", a.ID, err)
		}
		if err := waitRetry(ctx, &backoff); err != nil {
			return err
		}
	}
}

func decodeAccount(id string, d map[string]any) store.Account {
	a := store.Account{
		ID:                   id,
		Name:                 getStr(d, "name"),
		PhoneE164:            getStr(d, "phoneE164"),
		Status:               getStr(d, "status"),
		QRCode:               getStr(d, "qrCode"),
		QRUpdatedAt:          getTime(d, "qrUpdatedAt"),
		PairingCode:          getStr(d, "pairingCode"),
		CreatedAt:            getTime(d, "createdAt"),
		UpdatedAt:            getTime(d, "updatedAt"),
		WAJid:                getStr(d, "waJid"),
		LastConnectedAt:      getTime(d, "lastConnectedAt"),
		LastDisconnectedAt:   getTime(d, "lastDisconnectedAt"),
		LastDisconnectReason: getStr(d, "lastDisconnectReason"),
		LastDisconnectCode:   int(getInt(d, "lastDisconnectCode")),
		LastError:            getStr(d, "lastError"),
		LastErrorAt:          getTime(d, "lastErrorAt"),
		RequiresQR:           getBool(d, "requiresQR"),
		LogoutCount:          int(getInt(d, "logoutCount")),
		DeletedAt:            getTime(d, "deletedAt"),
		Epoch:                getInt(d, "leaseEpoch"),
	}
	if w, ok := d["worker"].(map[string]any); ok {
		a.Worker = store.Worker{
			Service:    getStr(w, "service"),
			InstanceID: getStr(w, "instanceId"),
			Version:    getStr(w, "version"),
			Commit:     getStr(w, "commit"),
			Uptime:     time.Duration(getInt(w, "uptime")) * time.Second,
			BootTs:     getTime(w, "bootTs"),
		}
	}
	return a
}

// GetAccount reads accounts/{id}.
func (s *Store) GetAccount(ctx context.Context, id string) (store.Account, error) {
	snap, err := s.c.Collection(colAccounts).Doc(id).Get(ctx)
	if isNotFound(err) {
		return store.Account{}, store.ErrNotFound
	}
	if err != nil {
		s.noteErr(err)
		return store.Account{}, fmt.Errorf("firestore: read account %s: %w", id, err)
	}
	return decodeAccount(id, snap.Data()), nil
}

// ListAccounts returns every account document, soft-deleted ones included
// (status "deleted"): callers decide what to show.
func (s *Store) ListAccounts(ctx context.Context) ([]store.Account, error) {
	docs, err := s.c.Collection(colAccounts).OrderBy(firestore.DocumentID, firestore.Asc).Documents(ctx).GetAll()
	if err != nil {
		s.noteErr(err)
		return nil, fmt.Errorf("firestore: list accounts: %w", err)
	}
	out := make([]store.Account, 0, len(docs))
	for _, d := range docs {
		out = append(out, decodeAccount(d.Ref.ID, d.Data()))
	}
	return out, nil
}

// reAddGrace separates a re-add from the deleted account's own last status
// write, which the daemon may build a moment before or after deletedAt.
const reAddGrace = 2 * time.Second

// reAdded reports whether a, written over a document deleted at del, is
// the account added again: a live status built well after the deletion
// (or with no time: an explicit write). A later status write clears it
// anyway, so clock skew between instances only delays the clearing.
func reAdded(a store.Account, del time.Time) bool {
	return a.Status != "deleted" && (a.UpdatedAt.IsZero() || a.UpdatedAt.After(del.Add(reAddGrace)))
}
