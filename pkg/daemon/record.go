package daemon

import (
	"context"
	"time"

	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/wactl/wactl/pkg/dedupe"
	"github.com/wactl/wactl/pkg/store"
	"github.com/wactl/wactl/pkg/store/msgbuild"
)

// storeTimeout bounds one store call from an event handler: a handler that
// hangs would stall every later event of the account.
const storeTimeout = 30 * time.Second

// resolve maps a @lid JID to the phone-number JID when whatsmeow knows the
// mapping, so one person has one thread whichever form a message used.
func (a *account) resolve(ctx context.Context, j types.JID) types.JID {
	if j.Server != types.HiddenUserServer {
		return j
	}
	a.mu.Lock()
	cli := a.cli
	a.mu.Unlock()
	if cli == nil || cli.Store == nil || cli.Store.LIDs == nil {
		return j
	}
	pn, err := cli.Store.LIDs.GetPNForLID(ctx, j)
	if err != nil || pn.IsEmpty() {
		return j
	}
	return pn
}

func (a *account) build(ctx context.Context, e *events.Message, source string) (msgbuild.Result, error) {
	chat := a.resolve(ctx, e.Info.Chat)
	sender := e.Info.Sender
	if sender.Server == types.HiddenUserServer && !e.Info.SenderAlt.IsEmpty() {
		sender = e.Info.SenderAlt
	}
	sender = a.resolve(ctx, sender)
	return msgbuild.Build(msgbuild.Input{AccountID: a.id, Event: e, Chat: chat, Sender: sender, Source: source})
}

// recordMessage stores one live message; false means "not durable, do not
// acknowledge".
func (a *account) recordMessage(e *events.Message) bool {
	if n := historyNotification(e); n != nil {
		return a.queueHistory(e, n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	res, err := a.build(ctx, e, msgbuild.SourceRealtime)
	if err != nil {
		// A message that cannot be interpreted will not improve on
		// redelivery; acknowledge it and say so.
		a.m.log.Error("message dropped: cannot interpret it", "account", a.id, "id", e.Info.ID, "err", err)
		return true
	}
	if err := a.apply(ctx, res); err != nil {
		a.m.log.Error("message not recorded; WhatsApp will redeliver it", "account", a.id, "id", e.Info.ID, "err", err)
		a.setState(a.currentState(), "store: "+err.Error())
		return false
	}
	if res.Kind == dedupe.KindChat {
		a.mu.Lock()
		if e.Info.Timestamp.After(a.lastMessageAt) {
			a.lastMessageAt = e.Info.Timestamp
		}
		a.mu.Unlock()
	}
	return true
}

func (a *account) apply(ctx context.Context, res msgbuild.Result) error {
	st := a.m.o.Store
	switch res.Kind {
	case dedupe.KindProtocol:
		return nil
	case dedupe.KindEdit, dedupe.KindRevoke:
		return a.applyFix(ctx, res)
	}
	out, err := st.RecordMessage(ctx, res.Message)
	if err != nil {
		return err
	}
	if err := a.applyParked(ctx, []store.Message{res.Message}); err != nil {
		return err
	}
	a.m.count(func(c *Counters) {
		switch out {
		case store.Wrote:
			c.DedupeWrote++
		case store.Skipped, store.Updated:
			c.DedupeSkipped++
		case store.StrongSkipped:
			c.DedupeStrongSkipped++
		}
	})
	return nil
}

// historyBatch bounds memory for large syncs: messages are converted and
// written this many at a time.
const historyBatch = 400

// recordReceipt moves our outbound messages to delivered/read on their one
// document.
func (a *account) recordReceipt(e *events.Receipt) bool {
	var status string
	switch e.Type {
	case types.ReceiptTypeDelivered:
		status = "delivered"
	case types.ReceiptTypeRead, types.ReceiptTypeReadSelf:
		status = "read"
	default:
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	chat := a.resolve(ctx, e.Chat)
	err := a.m.o.Store.UpdateReceipt(ctx, store.Receipt{
		AccountID: a.id, ChatJID: dedupe.CanonicalJID(chat.ToNonAD().String()),
		WAMessageIDs: e.MessageIDs, Status: status, At: e.Timestamp,
	})
	if err != nil && err != store.ErrNotFound {
		a.m.log.Warn("receipt not recorded", "account", a.id, "err", err)
		return false
	}
	return true
}
