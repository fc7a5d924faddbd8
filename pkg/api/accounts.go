package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/wactl/wactl/pkg/daemon"
	"github.com/wactl/wactl/pkg/dedupe"
	"github.com/wactl/wactl/pkg/store"
)

// qrFresh is how long regenerate-qr hands back the current QR instead of
// starting over (WhatsApp issues a new one about every 20 s anyway).
const qrFresh = 60 * time.Second

// regenTimeout bounds one regenerate-qr call, so its in-progress mark is
// cleared even when the daemon never answers.
const regenTimeout = 30 * time.Second

// accountCache keeps the stored accounts (createdAt, names of accounts
// not loaded in memory) for a few seconds: the list is polled every 2 s
// by every open app, and must not cost a Firestore query each time.
type accountCache struct {
	st  store.Store
	now func() time.Time
	ttl time.Duration

	mu      sync.Mutex
	at      time.Time
	byID    map[string]store.Account
	loading chan struct{}
}

func newAccountCache(st store.Store, now func() time.Time, ttl time.Duration) *accountCache {
	return &accountCache{st: st, now: now, ttl: ttl}
}

func (c *accountCache) get(ctx context.Context) map[string]store.Account {
	for {
		c.mu.Lock()
		if c.byID != nil && c.now().Sub(c.at) < c.ttl {
			m := c.byID
			c.mu.Unlock()
			return m
		}
		if c.loading != nil {
			// Someone is loading: serve the previous list rather than wait,
			// unless there is none yet.
			wait, m := c.loading, c.byID
			c.mu.Unlock()
			if m != nil {
				return m
			}
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil
			}
		}
		done := make(chan struct{})
		c.loading = done
		c.mu.Unlock()

		list, err := c.st.ListAccounts(ctx)
		c.mu.Lock()
		c.loading = nil
		if err == nil {
			m := make(map[string]store.Account, len(list))
			for _, a := range list {
				m[a.ID] = a
			}
			c.byID, c.at = m, c.now()
		} else if c.byID == nil {
			// Keep answering from memory; retry on the next poll.
			c.byID, c.at = map[string]store.Account{}, c.now().Add(-c.ttl)
		}
		m := c.byID
		c.mu.Unlock()
		close(done)
		return m
	}
}

func (c *accountCache) invalidate() {
	c.mu.Lock()
	c.at = time.Time{}
	c.mu.Unlock()
}

// findAccount is the live account with id, if it exists and is not deleted.
func (a *API) findAccount(id string) (daemon.AccountStatus, bool) {
	for _, s := range a.d.WhatsApp.Accounts() {
		if s.ID == id {
			return s, s.State != "deleted"
		}
	}
	return daemon.AccountStatus{}, false
}

func isoTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

func orNil(s string) any {
	if s == "" {
		return nil
	}
	return s
}

type accountRow struct {
	sort  time.Time
	id    string
	entry map[string]any
}

// listAccounts is polled every 2 s: memory plus the cached store list,
// never rate limited. QR and pairing codes go to admins only.
func (a *API) listAccounts(w http.ResponseWriter, r *http.Request) {
	p := principalOf(r)
	stored := a.accts.get(r.Context())
	seen := map[string]bool{}
	var rows []accountRow
	for _, s := range a.d.WhatsApp.Accounts() {
		if s.State == "deleted" {
			continue
		}
		seen[s.ID] = true
		sa := stored[s.ID]
		status := daemon.ContractStatus(s.State)
		var qr, code any
		if pr, ok := a.d.WhatsApp.Pairing(s.ID); ok && status != "connected" {
			if pr.QR != "" {
				status = "qr_ready"
			} else if pr.PairingCode != "" {
				status = "awaiting_scan"
			}
			if p.Admin {
				qr, code = orNil(a.qr.dataURL(s.ID, pr.QR)), orNil(pr.PairingCode)
			}
		}
		last := s.LastEventAt
		if last.IsZero() {
			last = sa.UpdatedAt
		}
		name := s.Name
		if name == "" {
			name = sa.Name
		}
		phone := s.Phone
		if phone == "" {
			phone = sa.PhoneE164
		}
		rows = append(rows, accountRow{sort: sa.CreatedAt, id: s.ID, entry: map[string]any{
			"id": s.ID, "name": name, "phone": a.phoneFor(p, phone), "status": status,
			"qrCode": qr, "pairingCode": code, "createdAt": isoTime(sa.CreatedAt),
			"lastUpdate": isoTime(last), "lastError": orNil(s.LastError),
		}})
	}
	// Accounts only the store knows (a PASSIVE instance holds none in
	// memory): their stored status, never a QR (it is not ours to show).
	for id, sa := range stored {
		if seen[id] || sa.Status == "deleted" || !sa.DeletedAt.IsZero() {
			continue
		}
		rows = append(rows, accountRow{sort: sa.CreatedAt, id: id, entry: map[string]any{
			"id": id, "name": sa.Name, "phone": a.phoneFor(p, sa.PhoneE164), "status": orNil(sa.Status),
			"qrCode": nil, "pairingCode": nil, "createdAt": isoTime(sa.CreatedAt),
			"lastUpdate": isoTime(sa.UpdatedAt), "lastError": orNil(sa.LastError),
		}})
	}
	sort.Slice(rows, func(i, j int) bool {
		if !rows[i].sort.Equal(rows[j].sort) {
			return rows[i].sort.Before(rows[j].sort)
		}
		return rows[i].id < rows[j].id
	})
	list := make([]map[string]any, len(rows))
	for i := range rows {
		list[i] = rows[i].entry
	}
	mode := "passive"
	if a.d.WhatsApp.Active() {
		mode = "active"
	}
	writeJSON(w, r, http.StatusOK, map[string]any{"accounts": list, "instanceId": a.instanceID(), "waMode": mode})
}

// phoneFor shows full numbers to admins and masked ones to other readers.
func (a *API) phoneFor(p *principal, phone string) any {
	if phone == "" {
		return nil
	}
	if p != nil && p.Admin {
		return phone
	}
	return daemon.MaskPhone(phone)
}

func (a *API) instanceID() string {
	if a.d.InstanceID != "" {
		return a.d.InstanceID
	}
	if a.d.Status != nil {
		return a.d.Status().InstanceID
	}
	return ""
}

// countAccounts counts accounts that are not deleted (memory ∪ store).
func (a *API) countAccounts(ctx context.Context) (int, map[string]bool) {
	ids := map[string]bool{}
	for _, s := range a.d.WhatsApp.Accounts() {
		if s.State != "deleted" {
			ids[s.ID] = true
		}
	}
	for id, sa := range a.accts.get(ctx) {
		if sa.Status != "deleted" && sa.DeletedAt.IsZero() {
			ids[id] = true
		}
	}
	return len(ids), ids
}

type addAccountBody struct {
	Name           string `json:"name"`
	Phone          string `json:"phone"`
	UsePairingCode bool   `json:"usePairingCode"`
}

func (a *API) addAccount(w http.ResponseWriter, r *http.Request) {
	var b addAccountBody
	if !a.readBody(w, r, &b) {
		return
	}
	name, err := validName(b.Name)
	if err != nil {
		fail(w, r, http.StatusBadRequest, "invalid_name", err.Error())
		return
	}
	phone := ""
	if strings.TrimSpace(b.Phone) != "" {
		if phone, err = ValidatePhone(b.Phone, a.o.CountryCode); err != nil {
			fail(w, r, http.StatusBadRequest, "invalid_phone", err.Error())
			return
		}
	}
	if b.UsePairingCode && phone == "" {
		fail(w, r, http.StatusBadRequest, "invalid_phone", "usePairingCode needs the account's phone number")
		return
	}
	id := ""
	if phone != "" {
		id = dedupe.AccountIDFromCanonical(a.o.Namespace, phone)
	} else {
		id = randomAccountID(a.o.Namespace)
	}
	if name == "" {
		name = phone
	}

	// The limit check and the creation are one step.
	a.addMu.Lock()
	defer a.addMu.Unlock()
	a.accts.invalidate()
	n, ids := a.countAccounts(r.Context())
	if ids[id] {
		a.reAddAccount(w, r, AddAccount{AccountID: id, Name: name, Phone: phone, PhoneCode: b.UsePairingCode})
		return
	}
	if n >= a.o.MaxAccounts {
		writeJSON(w, r, http.StatusTooManyRequests, map[string]any{"error": "rate_limited",
			"message": "account limit reached (config api.max_accounts)", "maxAccounts": a.o.MaxAccounts, "currentAccounts": n})
		return
	}
	err = a.d.WhatsApp.AddAccount(r.Context(), AddAccount{AccountID: id, Name: name, Phone: phone, PhoneCode: b.UsePairingCode})
	a.accts.invalidate()
	if err != nil {
		a.accountError(w, r, id, "add-account", err)
		return
	}
	a.log.Info("account added", "account", id, "by", principalOf(r).key())
	writeJSON(w, r, http.StatusOK, map[string]any{"account": map[string]any{
		"id": id, "name": name, "phone": orNil(phone), "status": "connecting",
		"qrCode": nil, "pairingCode": nil, "createdAt": isoTime(a.now()),
	}})
}

func randomAccountID(ns string) string {
	if ns == "" {
		ns = dedupe.DefaultNamespace
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "account_" + ns + "_" + hex.EncodeToString(b[:])
}

// validName accepts up to 100 printable characters.
func validName(s string) (string, error) {
	s = strings.TrimSpace(s)
	if !utf8.ValidString(s) {
		return "", errors.New("name is not valid UTF-8")
	}
	if utf8.RuneCountInString(s) > 100 {
		return "", errors.New("name is longer than 100 characters")
	}
	for _, c := range s {
		if unicode.IsControl(c) || nameRuneRefused(c) {
			return "", errors.New("name contains control or bidirectional formatting characters (printable text only)")
		}
	}
	return s, nil
}

// accountError maps the daemon's errors to answers.
func (a *API) accountError(w http.ResponseWriter, r *http.Request, id, op string, err error) {
	switch {
	case errors.Is(err, ErrNoAccount):
		fail(w, r, http.StatusNotFound, "account_not_found", "no account "+id)
	case errors.Is(err, ErrPassive):
		a.passive(w, r)
	case errors.Is(err, context.DeadlineExceeded):
		fail(w, r, http.StatusGatewayTimeout, "timeout", op+" did not finish in time; retry")
	case diskFull(err):
		a.log.Error(op+" failed", "account", id, "err", err)
		failDiskFull(w, r)
	default:
		// The error names server paths: the log keeps it, the answer
		// points there (issue 16 item 10).
		a.log.Error(op+" failed", "account", id, "err", err)
		fail(w, r, http.StatusInternalServerError, "internal", op+" failed; the daemon's log has the cause (request "+requestID(r)+")")
	}
}

// regenerateQR: the current QR when it is younger than a minute
// (idempotent); 202 already_in_progress while a pairing runs (the daemon's
// or our own call in flight) or a scanned QR is logging in; else a new
// pairing.
func (a *API) regenerateQR(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("accountId")
	st, ok := a.findAccount(id)
	if !ok {
		fail(w, r, http.StatusNotFound, "account_not_found", "no account "+id)
		return
	}
	if st.State == daemon.StateConnected {
		writeJSON(w, r, http.StatusConflict, map[string]any{"error": "already_connected",
			"message": "the account is connected; reset it first to pair another phone", "status": "connected"})
		return
	}
	if p, ok := a.d.WhatsApp.Pairing(id); ok {
		if p.QR != "" && a.now().Sub(p.IssuedAt) < qrFresh {
			writeJSON(w, r, http.StatusOK, map[string]any{"idempotent": true, "status": "qr_ready",
				"qrCode": a.qr.dataURL(id, p.QR), "qrUpdatedAt": isoTime(p.IssuedAt)})
			return
		}
		// A pairing runs (starting, older QR, pairing code): a second one
		// would cancel it. The old service's 202, never a new start.
		a.alreadyInProgress(w, r)
		return
	}
	if st.State == daemon.StateConnecting {
		// A scanned QR is logging in: a new pairing would throw it away.
		a.alreadyInProgress(w, r)
		return
	}
	if !a.regen.begin(id) {
		a.alreadyInProgress(w, r)
		return
	}
	defer a.regen.end(id)
	ctx, cancel := context.WithTimeout(r.Context(), regenTimeout)
	defer cancel()
	err := a.d.WhatsApp.RegenerateQR(ctx, id)
	if errors.Is(err, ErrPairingInProgress) {
		a.alreadyInProgress(w, r)
		return
	}
	if err != nil {
		a.accountError(w, r, id, "regenerate-qr", err)
		return
	}
	writeJSON(w, r, http.StatusOK, map[string]any{"status": "started", "idempotent": false,
		"message": "pairing started; the QR appears in the accounts list"})
}

// inflight marks keys with an operation running in this process.
type inflight struct {
	mu sync.Mutex
	m  map[string]bool
}

func newInflight() *inflight { return &inflight{m: map[string]bool{}} }

func (f *inflight) begin(k string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m[k] {
		return false
	}
	f.m[k] = true
	return true
}

func (f *inflight) end(k string) {
	f.mu.Lock()
	delete(f.m, k)
	f.mu.Unlock()
}

// simple runs one account operation of the daemon and answers.
func (a *API) simple(w http.ResponseWriter, r *http.Request, op string, answer map[string]any, fn func(ctx context.Context, id string) error) {
	id := r.PathValue("accountId")
	if _, ok := a.findAccount(id); !ok {
		fail(w, r, http.StatusNotFound, "account_not_found", "no account "+id)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), regenTimeout)
	defer cancel()
	err := fn(ctx, id)
	a.accts.invalidate()
	if err != nil {
		a.accountError(w, r, id, op, err)
		return
	}
	a.log.Info("account "+op, "account", id, "by", principalOf(r).key())
	answer["accountId"] = id
	writeJSON(w, r, http.StatusOK, answer)
}

func (a *API) deleteAccount(w http.ResponseWriter, r *http.Request) {
	a.simple(w, r, "delete", map[string]any{"status": "deleted"}, a.d.WhatsApp.Delete)
}

func (a *API) resetAccount(w http.ResponseWriter, r *http.Request) {
	a.simple(w, r, "reset", map[string]any{"status": "needs_qr"}, a.d.WhatsApp.Reset)
}

func (a *API) disconnectAccount(w http.ResponseWriter, r *http.Request) {
	a.simple(w, r, "disconnect", map[string]any{"status": "disconnected"}, a.d.WhatsApp.Disconnect)
}

func (a *API) renameAccount(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Name string `json:"name"`
	}
	if !a.readBody(w, r, &b) {
		return
	}
	name, err := validName(b.Name)
	if err == nil && name == "" {
		err = errors.New("name is empty")
	}
	if err != nil {
		fail(w, r, http.StatusBadRequest, "invalid_name", err.Error())
		return
	}
	a.simple(w, r, "rename", map[string]any{"name": name}, func(ctx context.Context, id string) error {
		return a.d.WhatsApp.Rename(ctx, id, name)
	})
}
