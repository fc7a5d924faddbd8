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

// TestRetryAfterRecordFailedWritesTheDocument: a send WhatsApp accepted but
// the store could not record answers record_failed and tells the caller
// to retry with the same key; that retry must write the document (status
// sent) without sending again, not only answer "duplicate".
func TestRetryAfterRecordFailedWritesTheDocument(t *testing.T) {
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
	st.failing.Store(false)
	r = e.do("POST", peerPath, e.svc, body, "X-Request-ID", reqID(5))
	if r.code != 200 || r.str("status") != "sent" {
		t.Fatalf("retry: %d %s", r.code, r.raw)
	}
	// And from then on the document answers, as for any repeat.
	r = e.do("POST", peerPath, e.svc, body, "X-Request-ID", reqID(5))
	if r.code != 200 || r.str("status") != "sent" || r.body["duplicate"] != true {
		t.Fatalf("second retry: %d %s", r.code, r.raw)
	}
	if n := len(e.wa.sent()); n != 1 {
		t.Fatalf("WhatsApp got the message %d times, want once", n)
	}
	ms := docs(t, inner)
	if len(ms) != 1 || ms[0].DocID != reqID(5) || ms[0].Status != "sent" {
		t.Fatalf("after the retry the thread has %d documents %+v; want the send's document at sent", len(ms), ms)
	}
}
