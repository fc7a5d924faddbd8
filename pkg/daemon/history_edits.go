package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/wactl/wactl/pkg/dedupe"
	"github.com/wactl/wactl/pkg/histq"
	"github.com/wactl/wactl/pkg/store"
	"github.com/wactl/wactl/pkg/store/msgbuild"
)

// Edits and revokes (issue 14.3): applied from live messages and from
// history syncs alike; one whose target is not recorded yet is parked in
// the history queue (durable, bounded, counted) and applied when the
// target is recorded. The stores keep the newest edit by edit time.

// applyFixes applies a batch's edits and revokes in order.
func (a *account) applyFixes(ctx context.Context, fixes []msgbuild.Result) error {
	for _, f := range fixes {
		if err := a.applyFix(ctx, f); err != nil {
			return err
		}
	}
	return nil
}

// applyFix applies one edit or revoke, parking it when its target is not
// in the store yet.
func (a *account) applyFix(ctx context.Context, res msgbuild.Result) error {
	st := a.m.o.Store
	var target, kind string
	var payload []byte
	var err error
	switch res.Kind {
	case dedupe.KindEdit:
		target, kind = res.Edit.TargetWAID, "edit"
		payload, err = json.Marshal(res.Edit)
	case dedupe.KindRevoke:
		target, kind = res.Revoke.TargetWAID, "revoke"
		payload, err = json.Marshal(res.Revoke)
	default:
		return nil
	}
	if err != nil {
		return err
	}
	// Asked first because a journal (Firestore mode) may accept an update
	// for a target that does not exist and drop it when shipping. When the
	// store cannot tell (Firestore unreachable), the update goes to the
	// store, which keeps it in order behind a target it has journaled.
	if _, ferr := st.FindMessage(ctx, a.id, target); !errors.Is(ferr, store.ErrNotFound) {
		err = a.applyStored(ctx, kind, payload)
		if !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	q := a.m.histWorker().queue()
	if q == nil {
		return fmt.Errorf("%s of %s: target not recorded yet and the history queue is not open", kind, target)
	}
	dropped, err := q.Park(ctx, histq.Parked{AccountID: a.id, TargetID: target, Kind: kind, Payload: payload})
	if err != nil {
		return err
	}
	a.m.log.Info("edit/revoke kept until its message arrives", "account", a.id, "kind", kind, "target", target)
	if dropped {
		a.m.log.Warn("parked edits/revokes at their bound: the oldest was dropped (counted)", "account", a.id)
	}
	return nil
}

func (a *account) applyStored(ctx context.Context, kind string, payload []byte) error {
	st := a.m.o.Store
	switch kind {
	case "edit":
		var e store.Edit
		if err := json.Unmarshal(payload, &e); err != nil {
			return err
		}
		return st.ApplyEdit(ctx, e)
	case "revoke":
		var r store.Revoke
		if err := json.Unmarshal(payload, &r); err != nil {
			return err
		}
		return st.ApplyRevoke(ctx, r)
	}
	return fmt.Errorf("unknown parked kind %q", kind)
}

// applyParked applies what waited for the messages just recorded.
func (a *account) applyParked(ctx context.Context, msgs []store.Message) error {
	q := a.m.histWorker().queue()
	if q == nil {
		return nil
	}
	for _, m := range msgs {
		if !q.Waiting(a.id, m.WAMessageID) {
			continue
		}
		ps, err := q.Parked(ctx, a.id, m.WAMessageID)
		if err != nil {
			return err
		}
		for _, p := range ps {
			if err := a.applyStored(ctx, p.Kind, p.Payload); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			if err := q.Unpark(ctx, p); err != nil {
				return err
			}
		}
	}
	return nil
}

// restoreEdit undoes what ParseWebMessage does to an edit in a history
// sync — it gives the edit its target's id and the new content, which
// would be recorded as a repeat of the target and dropped — so that the
// edit is applied as one.
func restoreEdit(evt *events.Message) *events.Message {
	raw := evt.RawMessage
	if inner := raw.GetEditedMessage().GetMessage(); inner != nil {
		raw = inner
	}
	pm := raw.GetProtocolMessage()
	if pm.GetType() != waE2E.ProtocolMessage_MESSAGE_EDIT || evt.SourceWebMsg.GetKey().GetID() == "" {
		return evt
	}
	e := *evt
	e.Info.ID = evt.SourceWebMsg.GetKey().GetID()
	e.Message = &waE2E.Message{ProtocolMessage: pm}
	return &e
}
