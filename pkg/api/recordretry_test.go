package api

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/wactl/wactl/pkg/daemon"
	"github.com/wactl/wactl/pkg/store"
	"github.com/wactl/wactl/pkg/store/sqlite"
)

// recordFails is a store whose RecordMessage fails while failing is set:
// a store that is briefly unwritable after WhatsApp accepted a send.
type recordFails struct {
	store.Store
	failing atomic.Bool
}

func (s *recordFails) RecordMessage(ctx context.Context, m store.Message) (store.Outcome, error) {
	if s.failing.Load() {
		return 0, errors.New("store briefly unwritable")
	}
	return s.Store.RecordMessage(ctx, m)
}

// TestDocumentWrittenAfterRecordFailed: a send WhatsApp accepted but the
// store could not record answers record_failed. The document must still
// be written, once, without a second send in the same process: by the
// retry the answer asks for, or by the outbox worker when the caller never
// retries, also after a restart (a resend under the same message id).
// Before, the key was claimed as sent and the retry answered duplicate:
// nothing ever wrote the document.
func TestDocumentWrittenAfterRecordFailed(t *testing.T) {
	for _, how := range []string{"retry", "worker", "worker, account disconnected meanwhile", "worker after a restart"} {
		t.Run(how, func(t *testing.T) {
			clk := newClock()
			inner, err := sqlite.Open(context.Background(), sqlite.Options{Dir: t.TempDir(), Now: clk.Now})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = inner.Close() })
			st := &recordFails{Store: inner}
			e := newEnvWithStore(t, st, clk)
			e.wa.addAccount(sendAcc, "+40722000111", daemon.StateConnected)
			body := map[string]any{"accountId": sendAcc, "to": "+40 722 999 888", "message": "hello", "threadId": sendThread}

			st.failing.Store(true)
			r := e.do("POST", peerPath, e.svc, body, "X-Request-ID", reqID(5))
			if r.code != 500 || r.str("error") != "record_failed" {
				t.Fatalf("send with the store unwritable: %d %s", r.code, r.raw)
			}
			first := e.wa.sent()
			st.failing.Store(false)
			sends := len(first)
			switch how {
			case "retry":
				r = e.do("POST", peerPath, e.svc, body, "X-Request-ID", reqID(5))
				if r.code != 200 || r.str("status") != "sent" {
					t.Fatalf("retry: %d %s", r.code, r.raw)
				}
				poll(t, e) // completes the key's item, as for any send the proxy queued
			case "worker":
				poll(t, e)
			case "worker, account disconnected meanwhile":
				// WhatsApp has the message: writing its document needs no
				// connection, and must not wait for one.
				e.wa.setState(sendAcc, daemon.StateReconnecting)
				poll(t, e)
			case "worker after a restart":
				e = newEnvWithStore(t, st, clk)
				e.wa.addAccount(sendAcc, "+40722000111", daemon.StateConnected)
				poll(t, e)
				again := e.wa.sent()
				if len(again) != 1 || again[0].ID != first[0].ID {
					t.Fatalf("after the restart the worker sent %+v; want one resend under %s", again, first[0].ID)
				}
			}
			if how != "worker after a restart" {
				sends = len(e.wa.sent())
			}
			if sends != 1 {
				t.Fatalf("WhatsApp got the message %d times in this process, want once", sends)
			}
			ms := docs(t, inner)
			if len(ms) != 1 || ms[0].DocID != reqID(5) || ms[0].Status != "sent" || ms[0].WAMessageID != first[0].ID {
				t.Fatalf("the thread has %d documents %+v; want the send's document at sent", len(ms), ms)
			}
			if it, err := inner.GetOutbox(context.Background(), reqID(5)); err != nil || it.Status != "sent" {
				t.Fatalf("the key's outbox item: %+v, %v; want sent", it, err)
			}
			// From then on the document answers, as for any repeat.
			r = e.do("POST", peerPath, e.svc, body, "X-Request-ID", reqID(5))
			if r.code != 200 || r.str("status") != "sent" || r.body["duplicate"] != true {
				t.Fatalf("a later retry: %d %s", r.code, r.raw)
			}
		})
	}
}

func poll(t *testing.T, e *env) {
	t.Helper()
	w := e.api.OutboxWorker(WorkerOptions{Claimer: "inst-a", Fence: func() (int64, bool) { return 1, true }})
	if _, err := w.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
}
