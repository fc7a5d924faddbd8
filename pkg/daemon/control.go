package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"

	"github.com/wactl/wactl/pkg/pair"
	"github.com/wactl/wactl/pkg/sessions"
	"github.com/wactl/wactl/pkg/store"
)

// Errors of the account controls used by the app's API.
var (
	ErrNotConnected      = errors.New("account not connected")
	ErrNoAccount         = errors.New("no such account")
	ErrPairingInProgress = errors.New("pairing already in progress")
	ErrConnected         = errors.New("account is connected; reset it to pair again")
)

// AddAccountRequest creates an account and starts pairing it.
type AddAccountRequest struct {
	AccountID string
	Name      string
	Phone     string // canonical +digits, or empty
	PhoneCode bool   // pairing code instead of QR (needs Phone)
}

// PairingState is an account's pairing in progress.
type PairingState struct {
	QR          string // raw QR content; empty when a pairing code is used
	PairingCode string // XXXX-XXXX, or empty
	IssuedAt    time.Time
	ExpiresAt   time.Time
	InProgress  bool // the pairing is starting and has no code yet
}

// SentInfo is what WhatsApp answered to a send.
type SentInfo struct {
	ID        string
	Timestamp time.Time
}

// Accounts lists every account with its live state.
func (m *Manager) Accounts() []AccountStatus {
	a, _ := m.Snapshot()
	return a
}

func (m *Manager) get(id string) *account {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.accounts[id]
}

// activeAccount is the account an ACTIVE instance may act on.
func (m *Manager) activeAccount(id string) (*account, error) {
	if !m.Active() {
		return nil, ErrPassive
	}
	a := m.get(id)
	if a == nil {
		return nil, ErrNoAccount
	}
	return a, nil
}

// Pairing returns the pairing in progress of an account.
func (m *Manager) Pairing(id string) (PairingState, bool) {
	a := m.get(id)
	if a == nil {
		return PairingState{}, false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.pairing, a.pairRunning
}

// AddAccount creates an account and starts pairing it in the background;
// its QR code (or pairing code) then shows in Pairing.
func (m *Manager) AddAccount(ctx context.Context, req AddAccountRequest) error {
	if !m.Active() {
		return ErrPassive
	}
	if err := sessions.ValidAccountID(req.AccountID); err != nil {
		return err
	}
	if _, err := m.o.Sessions.Create(sessions.NewAccount{ID: req.AccountID, Name: req.Name, Phone: req.Phone}); err != nil && !errors.Is(err, sessions.ErrAccountExists) {
		return err
	}
	return m.startPairing(PairRequest{AccountID: req.AccountID, Name: req.Name, Phone: req.Phone, PhoneCode: req.PhoneCode})
}

// RegenerateQR starts a new pairing of an account that is not connected.
func (m *Manager) RegenerateQR(ctx context.Context, id string) error {
	a, err := m.activeAccount(id)
	if err != nil {
		return err
	}
	a.mu.Lock()
	running, connected := a.pairRunning, a.cli != nil && a.state == StateConnected
	phone, name := a.phone, a.name
	a.mu.Unlock()
	if running {
		return ErrPairingInProgress
	}
	if connected {
		return ErrConnected
	}
	return m.startPairing(PairRequest{AccountID: id, Name: name, Phone: phone})
}

// startPairing runs Manager.Pair in the background, keeping the codes where
// Pairing finds them; the flag is cleared on success, failure and timeout
// alike (the old service's flag never was, and answered 202 forever).
func (m *Manager) startPairing(req PairRequest) error {
	m.mu.Lock()
	a := m.accounts[req.AccountID]
	if a == nil {
		a = &account{m: m, id: req.AccountID, state: StateNeedsQR, name: req.Name, phone: req.Phone}
		m.accounts[req.AccountID] = a
	}
	ctx := m.ctx
	m.mu.Unlock()
	a.mu.Lock()
	if a.pairRunning {
		a.mu.Unlock()
		return ErrPairingInProgress
	}
	a.pairRunning = true
	a.pairing = PairingState{InProgress: true, IssuedAt: m.o.Now()}
	a.mu.Unlock()
	go func() {
		defer func() {
			a.mu.Lock()
			a.pairRunning, a.pairing = false, PairingState{}
			a.mu.Unlock()
			m.status.mark(a.id)
		}()
		_, err := m.Pair(ctx, req, func(e pair.Event) {
			a.mu.Lock()
			switch e.Kind {
			case pair.KindQR:
				a.pairing = PairingState{QR: e.Code, IssuedAt: m.o.Now(), ExpiresAt: e.ExpiresAt}
			case pair.KindPairCode:
				a.pairing = PairingState{PairingCode: e.Code, IssuedAt: m.o.Now(), ExpiresAt: e.ExpiresAt}
			}
			a.mu.Unlock()
			m.status.mark(a.id)
		})
		if err != nil {
			m.log.Warn("pairing ended without success", "account", a.id, "err", err)
		}
	}()
	return nil
}

// Disconnect stops an account's connection without touching its session.
func (m *Manager) Disconnect(ctx context.Context, id string) error {
	a, err := m.activeAccount(id)
	if err != nil {
		return err
	}
	a.stop(StateStopped, "disconnected by the API")
	a.setState(StateStopped, "")
	return nil
}

// Reset logs the account out (WhatsApp drops the linked device) and
// deletes its session: it needs a new QR. This is an explicit operator
// command, the one case besides a confirmed logout where a session goes.
func (m *Manager) Reset(ctx context.Context, id string) error {
	a, err := m.activeAccount(id)
	if err != nil {
		return err
	}
	a.mu.Lock()
	cli := a.cli
	a.mu.Unlock()
	if cli != nil && cli.IsLoggedIn() {
		if err := cli.Logout(ctx); err != nil {
			return fmt.Errorf("log out of WhatsApp: %w", err)
		}
	}
	a.stop(StateNeedsQR, "reset")
	dev, err := m.o.Sessions.OpenDevice(ctx, id, sessions.DeviceOptions{})
	if err != nil {
		return err
	}
	if dev.Paired() {
		if err := a.unlink(ctx, dev); err != nil {
			dev.Close()
			return fmt.Errorf("unlink: %w", err)
		}
	}
	dev.Close()
	if _, err := m.o.Sessions.MarkUnpaired(id); err != nil && !errors.Is(err, sessions.ErrNoMetadata) {
		return err
	}
	a.mu.Lock()
	a.hasDisk = false
	a.mu.Unlock()
	a.setState(StateNeedsQR, "")
	return nil
}

// Rename changes an account's display name.
func (m *Manager) Rename(ctx context.Context, id, name string) error {
	a, err := m.activeAccount(id)
	if err != nil {
		return err
	}
	if _, err := m.o.Sessions.Update(id, func(acct *sessions.Account) error { acct.Name = name; return nil }); err != nil &&
		!errors.Is(err, sessions.ErrNoMetadata) {
		return err
	}
	a.mu.Lock()
	a.name = name
	a.mu.Unlock()
	m.status.mark(id)
	return nil
}

// Delete soft-deletes an account: disconnected, its session kept under
// removed/ (an operator can move it back), its document marked deleted.
func (m *Manager) Delete(ctx context.Context, id string) error {
	a, err := m.activeAccount(id)
	if err != nil {
		return err
	}
	a.stop(StateStopped, "deleted")
	if _, err := m.o.Sessions.Remove(id, sessions.RemoveOptions{}); err != nil && !errors.Is(err, sessions.ErrNoAccount) {
		return err
	}
	// Out of the map first, and past any status flush that still holds
	// it, so that no status write lands after "deleted".
	m.mu.Lock()
	delete(m.accounts, id)
	m.mu.Unlock()
	m.status.barrier()
	doc := a.document(m)
	doc.Status, doc.DeletedAt = "deleted", m.o.Now()
	if err := m.o.Store.PutAccount(ctx, doc); err != nil && !errors.Is(err, store.ErrFenced) {
		return err
	}
	return nil
}

// SendText sends one text message under a caller-chosen WhatsApp id, so a
// resend after a crash or a timeout reuses it.
func (m *Manager) SendText(ctx context.Context, id string, to types.JID, body, waMessageID string) (SentInfo, error) {
	a, err := m.activeAccount(id)
	if err != nil {
		return SentInfo{}, err
	}
	a.mu.Lock()
	cli, state := a.cli, a.state
	a.mu.Unlock()
	if cli == nil || state != StateConnected || !cli.IsLoggedIn() {
		return SentInfo{}, ErrNotConnected
	}
	resp, err := cli.SendMessage(ctx, to.ToNonAD(), &waE2E.Message{Conversation: proto.String(body)},
		whatsmeow.SendRequestExtra{ID: types.MessageID(waMessageID)})
	if err != nil {
		return SentInfo{}, err
	}
	return SentInfo{ID: string(resp.ID), Timestamp: resp.Timestamp}, nil
}

// unlink logs a paired but stopped device out. Its client connects through
// the gate (connect.go) like every other, then pair.Unlink logs it out.
func (a *account) unlink(ctx context.Context, dev *sessions.Device) error {
	cli := a.newClient(dev)
	a.mu.Lock()
	a.cli, a.dev = cli, dev
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		if a.cli == cli {
			a.cli, a.dev = nil, nil // the caller closes dev
		}
		a.mu.Unlock()
		a.disconnect(cli)
	}()
	if err := a.m.connect(a, cli, "unlink"); err != nil {
		return err
	}
	// pair.Unlink logs out a logged-in client at once; wait for the login
	// (or for the server saying the device is gone).
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for !cli.IsLoggedIn() && cli.Store.ID != nil {
		select {
		case <-wctx.Done():
			return fmt.Errorf("waiting for login: %w", wctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if cli.Store.ID == nil {
		return nil // logged out on the server already; whatsmeow deleted it
	}
	return pair.Unlink(ctx, cli)
}
