package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/wactl/wactl/pkg/daemon"
)

// The old service's backfill defaults (WHATSAPP_BACKFILL_THREADS,
// WHATSAPP_BACKFILL_COUNT): the 50 most recently active chats, 100
// messages each.
const (
	backfillChats = 50
	backfillCount = 100
)

// historyRequester is what the daemon's Manager offers for backfill
// (daemon.Manager.RequestHistory); a WhatsApp without it cannot backfill.
type historyRequester interface {
	RequestHistory(ctx context.Context, accountID string, chats, count int) (int, error)
}

// backfill is POST /api/whatsapp/backfill/{accountId} (the proxy's
// whatsappProxyBackfillAccount): it asks the account's phone for the recent
// history of its most recently active chats (WhatsApp's on-demand history
// request). The phone answers with history syncs, recorded through the
// durable history queue like the first sync after pairing, so the answer
// says the request was sent, not that the history is in already.
func (a *API) backfill(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("accountId")
	if _, ok := a.findAccount(id); !ok {
		fail(w, r, http.StatusNotFound, "account_not_found", "no account "+id)
		return
	}
	hr, ok := a.d.WhatsApp.(historyRequester)
	if !ok {
		fail(w, r, http.StatusNotImplemented, "not_supported", "this instance cannot ask phones for history")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), regenTimeout)
	defer cancel()
	n, err := hr.RequestHistory(ctx, id, backfillChats, backfillCount)
	if errors.Is(err, daemon.ErrNotConnected) || errors.Is(err, ErrNotConnected) {
		fail(w, r, http.StatusConflict, "not_connected", "account "+id+" is not connected; connect it, then backfill")
		return
	}
	if errors.Is(err, daemon.ErrNoAccount) {
		fail(w, r, http.StatusNotFound, "account_not_found", "no account "+id)
		return
	}
	if err != nil && n == 0 {
		a.accountError(w, r, id, "backfill", err)
		return
	}
	a.log.Info("account backfill requested", "account", id, "chats", n, "by", principalOf(r).key())
	msg := "history requested from the phone; it is recorded as the phone sends it"
	if n == 0 {
		msg = "no chat with a recorded message to ask history for (WhatsApp anchors every request at a known message)"
	}
	writeJSON(w, r, http.StatusOK, map[string]any{
		"accountId": id, "status": "requested", "threads": n, "messagesPerThread": backfillCount, "message": msg,
	})
}
