package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"

	"github.com/wactl/wactl/pkg/pair"
	"github.com/wactl/wactl/pkg/sessions"
	"github.com/wactl/wactl/pkg/store"
)

// ErrPassive is returned for operations only the ACTIVE instance may do.
var ErrPassive = errors.New("this instance is PASSIVE (another instance holds the lease); pair on the ACTIVE instance")

// PairRequest asks the running daemon to pair an account.
type PairRequest struct {
	AccountID string `json:"accountId"`
	Name      string `json:"name,omitempty"`
	Phone     string `json:"phone,omitempty"` // canonical +digits
	PhoneCode bool   `json:"code,omitempty"`  // pair by an 8-character code instead of a QR
	Force     bool   `json:"force,omitempty"` // unlink a paired device first
}

// Pair pairs an account on this ACTIVE daemon, streaming codes and the
// outcome to events. On success the new client stays connected as the
// account's client, with the same handler as every other client.
func (m *Manager) Pair(ctx context.Context, req PairRequest, events func(pair.Event)) (pair.Result, error) {
	if !m.Active() {
		return pair.Result{Outcome: pair.OutcomeError}, ErrPassive
	}
	if err := sessions.ValidAccountID(req.AccountID); err != nil {
		return pair.Result{Outcome: pair.OutcomeError}, err
	}
	acct, err := m.o.Sessions.Create(sessions.NewAccount{ID: req.AccountID, Name: req.Name, Phone: req.Phone})
	if err != nil && !errors.Is(err, sessions.ErrAccountExists) {
		return pair.Result{Outcome: pair.OutcomeError}, err
	}
	created := err == nil
	phone := req.Phone
	if phone == "" && acct != nil {
		phone = acct.Phone
	}

	m.mu.Lock()
	a := m.accounts[req.AccountID]
	isNew := a == nil
	if a == nil {
		a = &account{m: m, id: req.AccountID, state: StateNeedsQR}
		m.accounts[req.AccountID] = a
	}
	actx := m.ctx
	m.mu.Unlock()

	// A pairing that created the account and does not end paired leaves
	// nothing behind (the operator is told "nothing was kept"): not the
	// account directory, not the daemon's entry. It runs before the
	// outcome reaches the operator, so what they check next agrees.
	var discardOnce sync.Once
	giveUp := func(why string) {
		discardOnce.Do(func() {
			// A step-down stops this account's client and closes its store
			// concurrently: let it finish, or the store is still open
			// ("in use") when the directory is removed.
			m.waitDown()
			if !created {
				a.stop(StateNeedsQR, why)
				a.setState(StateNeedsQR, "")
				return
			}
			m.discardPairing(a, isNew)
		})
	}
	fail := func(err error) (pair.Result, error) {
		giveUp("pairing did not start")
		return pair.Result{Outcome: pair.OutcomeError}, err
	}

	a.mu.Lock()
	busy := a.cli != nil
	if acct != nil {
		a.name, a.phone = acct.Name, acct.Phone
	}
	a.mu.Unlock()
	if busy {
		if !req.Force {
			return pair.Result{Outcome: pair.OutcomeError},
				fmt.Errorf("%w: account %s is connected; use --force to unlink it and pair again", pair.ErrAlreadyPaired, req.AccountID)
		}
		a.stop(StateNeedsQR, "re-pairing")
	}

	// Pairing ends when the operator gives up (ctx) or the lease is lost;
	// every connection it opens goes through the gate (connect.go), so
	// none is opened once this instance steps down.
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopOnPassive := context.AfterFunc(actx, cancel)
	defer stopOnPassive()

	dev, err := m.o.Sessions.OpenDevice(pctx, req.AccountID, sessions.DeviceOptions{})
	if err != nil {
		return fail(err)
	}
	if dev.Paired() {
		if !req.Force {
			dev.Close()
			return pair.Result{Outcome: pair.OutcomeError},
				fmt.Errorf("%w: account %s; use --force to unlink it and pair again", pair.ErrAlreadyPaired, req.AccountID)
		}
		if err := m.unlinkOld(pctx, a, dev); err != nil {
			dev.Close()
			return pair.Result{Outcome: pair.OutcomeError}, fmt.Errorf("unlink before re-pairing: %w", err)
		}
		dev.Store = dev.Container.NewDevice()
	}

	cli := a.newClient(dev)
	a.mu.Lock()
	a.cli, a.dev = cli, dev
	a.state, a.connectedOnce = StateQRReady, false
	a.mu.Unlock()
	m.status.mark(a.id)

	// The account's records are updated before the operator hears
	// "paired", so whatever they check next already shows it.
	forward := func(e pair.Event) {
		if e.Kind == pair.KindOutcome && e.Outcome != pair.OutcomePaired && actx.Err() != nil && ctx.Err() == nil {
			// Not the operator's Ctrl-C: the lease was lost.
			e.Outcome, e.Error = pair.OutcomeError, ErrPassive.Error()+": this instance stepped down during the pairing; nothing was kept"
		}
		if e.Kind == pair.KindOutcome {
			if e.Outcome == pair.OutcomePaired {
				a.markPaired(e.JID)
			} else {
				giveUp("pairing did not complete")
			}
		}
		if events != nil {
			events(e)
		}
	}
	res, err := pair.Pair(pctx, cli, pair.Options{ExpectedPhone: phone, PhoneCode: req.PhoneCode, Events: forward, Logger: m.log,
		Driver: m.pairDriver(a, cli, "pairing")})
	if err != nil {
		giveUp("pairing did not complete")
		return res, err
	}
	m.log.Info("paired through the daemon", "account", req.AccountID)
	return res, nil
}

// discardPairing undoes an account that a failed pairing created: the
// client stops, the directory is deleted (it never held a session) and a
// daemon entry made for the pairing is forgotten, its document marked
// deleted like an operator's delete.
func (m *Manager) discardPairing(a *account, isNew bool) {
	a.stop(StateStopped, "pairing did not complete")
	if _, err := m.o.Sessions.Remove(a.id, sessions.RemoveOptions{Purge: true}); err != nil && !errors.Is(err, sessions.ErrNoAccount) {
		m.log.Warn("could not remove the account of a failed pairing", "account", a.id, "err", err)
	}
	if !isNew {
		a.setState(StateNeedsQR, "")
		return
	}
	m.mu.Lock()
	if m.accounts[a.id] == a {
		delete(m.accounts, a.id)
	}
	m.mu.Unlock()
	m.status.barrier()
	doc := a.document(m)
	doc.Status, doc.DeletedAt = "deleted", m.o.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.o.Store.PutAccount(ctx, doc); err != nil && !errors.Is(err, store.ErrFenced) {
		m.log.Warn("could not mark the account of a failed pairing deleted", "account", a.id, "err", err)
	}
}

func (a *account) markPaired(jid string) {
	if _, err := a.m.o.Sessions.MarkPaired(a.id, jid); err != nil {
		a.m.log.Warn("paired, but account.json not updated", "account", a.id, "err", err)
	}
	a.mu.Lock()
	a.hasDisk = true
	if j, err := types.ParseJID(jid); err == nil {
		a.waJID = j.ToNonAD().String()
	}
	a.mu.Unlock()
	a.m.status.mark(a.id)
}

// pairDriver connects a pairing's client through the gate and closes it
// the account's one way.
func (m *Manager) pairDriver(a *account, cli *whatsmeow.Client, why string) pair.Driver {
	return pair.Driver{
		Connect: func(context.Context) error {
			if err := m.connect(a, cli, why); err != nil {
				if refused(err) {
					return fmt.Errorf("%w (%v)", ErrPassive, err)
				}
				return err
			}
			return nil
		},
		Disconnect: func() { a.disconnect(cli) },
	}
}

// unlinkOld logs the account's paired device out before a forced
// re-pairing. Its client is not the account's: it is registered as an
// auxiliary client, so it connects only through the gate and a step-down
// disconnects it (nothing of a PASSIVE instance logs a device in or out).
func (m *Manager) unlinkOld(ctx context.Context, a *account, dev *sessions.Device) error {
	old := a.newClient(dev)
	defer old.RemoveEventHandlers()
	release, err := m.addAux(a, old)
	if err != nil {
		return fmt.Errorf("%w (%v)", ErrPassive, err)
	}
	defer release()
	return pair.UnlinkWith(ctx, old, m.pairDriver(a, old, "unlink before re-pairing"))
}
