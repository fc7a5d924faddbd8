package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/wactl/wactl/pkg/daemon"
)

// reAddAccount answers add-account for a phone whose account is live as
// the old service did, and as the app expects: 200 with the account.
// Pairing restarts only when the account is not connected and no pairing
// or login is already running; a connected account is left alone.
func (a *API) reAddAccount(w http.ResponseWriter, r *http.Request, req AddAccount) {
	id := req.AccountID
	ctx, cancel := context.WithTimeout(r.Context(), regenTimeout)
	defer cancel()
	sa := a.accts.get(ctx)[id]
	st, live := a.findAccount(id)
	status := daemon.ContractStatus(st.State)
	var err error
	switch {
	case !live:
		// Stored only: paired elsewhere, or never paired on this host.
		// This ACTIVE instance takes it up with a new pairing.
		err = a.d.WhatsApp.AddAccount(ctx, req)
		status = "connecting"
	case st.State == daemon.StateConnected:
	case st.State == daemon.StateConnecting:
	default:
		if _, pairing := a.d.WhatsApp.Pairing(id); pairing || !a.regen.begin(id) {
			break
		}
		err = a.d.WhatsApp.RegenerateQR(ctx, id)
		a.regen.end(id)
		if errors.Is(err, ErrPairingInProgress) || errors.Is(err, daemon.ErrConnected) {
			err = nil
		}
		status = "connecting"
	}
	a.accts.invalidate()
	if err != nil {
		a.accountError(w, r, id, "add-account", err)
		return
	}
	name, phone := st.Name, st.Phone
	if name == "" {
		name = sa.Name
	}
	if phone == "" {
		phone = sa.PhoneE164
	}
	if phone == "" {
		phone = req.Phone
	}
	created := sa.CreatedAt
	if created.IsZero() {
		created = a.now()
	}
	a.log.Info("account re-added", "account", id, "status", status, "by", principalOf(r).key())
	writeJSON(w, r, http.StatusOK, map[string]any{"account": map[string]any{
		"id": id, "name": name, "phone": orNil(phone), "status": status,
		"qrCode": nil, "pairingCode": nil, "createdAt": isoTime(created),
	}})
}

// alreadyInProgress is the old service's answer to regenerate-qr while a
// pairing runs; the app treats 202 as success and keeps polling.
func (a *API) alreadyInProgress(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, r, http.StatusAccepted, map[string]any{"status": "already_in_progress", "accountId": r.PathValue("accountId"),
		"message": "a pairing is already in progress; the QR appears in the accounts list"})
}
