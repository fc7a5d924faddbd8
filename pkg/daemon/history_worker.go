package daemon

import (
	"context"
	"errors"
	"strings"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"

	"github.com/wactl/wactl/pkg/dedupe"
	"github.com/wactl/wactl/pkg/histq"
	"github.com/wactl/wactl/pkg/store"
	"github.com/wactl/wactl/pkg/store/msgbuild"
)

// run records due queue entries while the manager is ACTIVE.
func (h *historyWorker) run(ctx context.Context, done chan struct{}) {
	defer close(done)
	for ctx.Err() == nil {
		if h.step(ctx) {
			continue
		}
		t := time.NewTimer(h.policy.Poll)
		select {
		case <-ctx.Done():
		case <-h.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// step works on the due entries once; true when it made progress (so the
// loop goes on without waiting).
func (h *historyWorker) step(ctx context.Context) bool {
	q := h.queue()
	if q == nil || !h.m.Active() {
		return false
	}
	due, err := q.DueRefs(ctx, h.m.o.Now(), 1000)
	if err != nil {
		if ctx.Err() == nil {
			h.m.log.Error("history queue unreadable", "err", err)
		}
		return false
	}
	progress := false
	for _, ref := range due {
		if ctx.Err() != nil || !h.m.Active() {
			return false
		}
		h.m.mu.Lock()
		a := h.m.accounts[ref.AccountID]
		h.m.mu.Unlock()
		if a == nil {
			continue
		}
		a.mu.Lock()
		cli := a.cli
		a.mu.Unlock()
		if cli == nil {
			continue // not connected on this instance (yet): it stays queued
		}
		e, err := q.Get(ctx, ref.ID)
		if err != nil {
			continue // finished meanwhile
		}
		if h.process(ctx, q, a, cli, e) {
			progress = true
		}
	}
	return progress
}

// process downloads, decodes and records one entry from its cursor; true
// when the entry is finished (recorded or given up).
func (h *historyWorker) process(ctx context.Context, q *histq.Queue, a *account, cli *whatsmeow.Client, e histq.Entry) bool {
	log := h.m.log.With("account", a.id, "id", e.MessageID)
	var n waE2E.HistorySyncNotification
	if err := proto.Unmarshal(e.Notification, &n); err != nil {
		h.lose(ctx, q, a, e, histq.ReasonUndecodable, "queued notification: "+err.Error())
		return true
	}
	if n.InitialHistBootstrapInlinePayload == nil && !cli.IsLoggedIn() {
		return false // downloading needs the connection; not an attempt
	}
	dctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	blob, err := cli.DownloadHistorySync(dctx, &n, true)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return false
		}
		h.downloadFailed(ctx, q, a, e, err)
		return false
	}
	if e.Conv == 0 && e.Msg == 0 {
		log.Info("history sync downloaded; recording", "conversations", len(blob.GetConversations()), "type", blob.GetSyncType().String())
	} else {
		log.Info("history sync resumed from its cursor", "conversation", e.Conv, "message", e.Msg, "recorded", e.Recorded)
	}
	done, err := h.record(ctx, q, a, cli, e, blob)
	if err != nil {
		if ctx.Err() != nil {
			return false
		}
		h.mu.Lock()
		h.refused[e.ID]++
		n := h.refused[e.ID]
		h.mu.Unlock()
		wait := h.policy.StoreBackoff(n)
		log.Error("history batch not recorded; kept in the queue and retried", "err", err, "retry_in", wait)
		a.setState(a.currentState(), "store: "+err.Error())
		if rerr := q.Defer(ctx, e.ID, errText(err), h.m.o.Now().Add(wait)); rerr != nil {
			log.Error("history queue: cannot record the retry", "err", rerr)
		}
		return false
	}
	if !done {
		return false // stopped part-way (PASSIVE, shutdown); the cursor is saved
	}
	h.mu.Lock()
	delete(h.refused, e.ID)
	h.mu.Unlock()
	return true
}

// downloadFailed retries with backoff, and after MaxAttempts gives the
// notification up as a named loss and asks the phone again.
func (h *historyWorker) downloadFailed(ctx context.Context, q *histq.Queue, a *account, e histq.Entry, err error) {
	attempt := e.Attempts + 1
	reason := histq.ReasonMediaGone
	if s := err.Error(); strings.Contains(s, "decompress") || strings.Contains(s, "unmarshal") || errors.Is(err, whatsmeow.ErrInvalidMediaHMAC) ||
		errors.Is(err, whatsmeow.ErrInvalidMediaEncSHA256) || errors.Is(err, whatsmeow.ErrInvalidMediaSHA256) {
		reason = histq.ReasonUndecodable
	}
	if attempt >= h.policy.MaxAttempts {
		e.Attempts = attempt
		h.lose(ctx, q, a, e, reason, err.Error())
		return
	}
	wait := h.policy.Backoff(attempt)
	h.m.log.Warn("history sync download failed; retrying", "account", a.id, "id", e.MessageID, "attempt", attempt,
		"of", h.policy.MaxAttempts, "retry_in", wait, "err", err)
	if rerr := q.Retry(ctx, e.ID, err.Error(), h.m.o.Now().Add(wait)); rerr != nil {
		h.m.log.Error("history queue: cannot record the retry", "err", rerr)
	}
}

func (h *historyWorker) lose(ctx context.Context, q *histq.Queue, a *account, e histq.Entry, reason, detail string) {
	lossID, err := q.Lose(ctx, e, reason, detail)
	if err != nil {
		h.m.log.Error("history queue: cannot record a loss", "account", a.id, "id", e.MessageID, "err", err)
		return
	}
	h.m.log.Error("HISTORY LOST: a history sync could not be recorded; counted on /health, /metrics and in wactl doctor",
		"account", a.id, "id", e.MessageID, "reason", reason, "attempts", e.Attempts, "recorded_before", e.Recorded, "err", detail)
	// The protocol lets a companion ask the phone for history per chat,
	// anchored at a message it has: ask for the recent chats again.
	rctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	if n, err := a.requestHistory(rctx, rerequestChats, rerequestCount); err != nil {
		h.m.log.Warn("could not ask the phone for the lost history again", "account", a.id, "err", err)
	} else if n > 0 {
		_ = q.MarkRerequested(ctx, lossID)
		h.m.log.Info("asked the phone for the lost history again", "account", a.id, "chats", n)
	}
}

// Re-request after a loss: the most recent chats, this many messages each.
const (
	rerequestChats = 20
	rerequestCount = 50
)

// record writes the blob's messages from the entry's cursor in batches,
// saving the cursor after each, and deletes the entry when all are
// durable. done is false when it stopped early without an error.
func (h *historyWorker) record(ctx context.Context, q *histq.Queue, a *account, cli *whatsmeow.Client, e histq.Entry, blob *waHistorySync.HistorySync) (done bool, err error) {
	convs := blob.GetConversations()
	recorded := e.Recorded
	batch := make([]store.Message, 0, historyBatch)
	var fixes []msgbuild.Result
	skips := map[string]int{}
	var total store.HistoryResult
	ci, mi := e.Conv, e.Msg
	flush := func() error {
		if len(batch) > 0 {
			r, err := a.m.o.Store.RecordHistory(ctx, a.id, batch)
			if err != nil {
				return err
			}
			total.Saved += r.Saved
			total.Skipped += r.Skipped
			total.Errors += r.Errors
			total.Total += r.Total
			recorded += len(batch)
		}
		if err := a.applyFixes(ctx, fixes); err != nil {
			return err
		}
		if err := a.applyParked(ctx, batch); err != nil {
			return err
		}
		if err := q.AddSkips(ctx, a.id, skips); err != nil {
			return err
		}
		if n := sum(skips); n > 0 {
			a.m.log.Warn("history messages not recorded (counted by reason)", "account", a.id, "id", e.MessageID, "skipped", skips)
		}
		batch, fixes, skips = batch[:0], fixes[:0], map[string]int{}
		// Everything before (ci, mi) is durable now.
		return q.Advance(ctx, e.ID, ci, mi, recorded)
	}
	pending := 0
	for ; ci < len(convs); ci, mi = ci+1, 0 {
		conv := convs[ci]
		msgs := conv.GetMessages()
		chat, perr := types.ParseJID(conv.GetID())
		if perr != nil {
			if n := len(msgs) - mi; n > 0 {
				skips[histq.SkipBadChat] += n
				pending += n
			}
			continue
		}
		for ; mi < len(msgs); mi++ {
			pending++
			evt, perr := cli.ParseWebMessage(chat, msgs[mi].GetMessage())
			if perr != nil {
				skips[histq.SkipParse]++
			} else if res, berr := a.build(ctx, restoreEdit(evt), msgbuild.SourceHistory); berr != nil {
				skips[histq.SkipBuild]++
			} else {
				switch res.Kind {
				case dedupe.KindChat, dedupe.KindReaction:
					batch = append(batch, res.Message)
				case dedupe.KindEdit, dedupe.KindRevoke:
					fixes = append(fixes, res)
				default:
					skips[histq.SkipProtocol]++
				}
			}
			if pending >= historyBatch {
				mi++ // the cursor points past this message
				if err := flush(); err != nil {
					return false, err
				}
				mi--
				pending = 0
				if ctx.Err() != nil || !h.m.Active() {
					return false, nil
				}
			}
		}
	}
	if err := flush(); err != nil {
		return false, err
	}
	if err := q.Done(ctx, e.ID); err != nil {
		return false, err
	}
	a.m.count(func(c *Counters) {
		c.HistoryWrote += int64(total.Saved)
		c.HistorySkipped += int64(total.Skipped)
		c.HistoryLastRunAt = a.m.o.Now()
		c.HistoryLastBatch = recorded
	})
	a.m.log.Info("history sync recorded", "account", a.id, "id", e.MessageID, "messages", recorded,
		"saved", total.Saved, "skipped", total.Skipped, "errors", total.Errors)
	return true, nil
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
