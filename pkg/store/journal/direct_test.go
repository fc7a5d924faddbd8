package journal_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/pkg/fsclient"
	"github.com/wactl/wactl/pkg/store"
	fsstore "github.com/wactl/wactl/pkg/store/firestore"
	"github.com/wactl/wactl/pkg/store/journal"
)

// lostAnswer is the Firestore store whose first commit lands but whose
// answer is lost (the caller sees Unavailable), as after a timeout.
type lostAnswer struct {
	*fsstore.Store
	mu    sync.Mutex
	calls int
	outs  []store.Outcome
}

func (l *lostAnswer) RecordMessagesTokens(ctx context.Context, msgs []store.Message, tokens []string) ([]store.Outcome, error) {
	out, err := l.Store.RecordMessagesTokens(ctx, msgs, tokens)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls++
	if err == nil {
		l.outs = append(l.outs, out...)
	}
	if l.calls == 1 {
		return nil, status.Error(codes.Unavailable, "answer lost")
	}
	return out, err
}

// TestDirectWriteLostAnswerShipsAsItself: a direct write whose commit
// landed but whose answer was lost is journaled (the caller is told it is
// durable), shipped later under the same write token, and recognised as
// that write: one document, reported written, not a repeat.
func TestDirectWriteLostAnswerShipsAsItself(t *testing.T) {
	c, project := fsemu.NewClient(t)
	b, err := fsstore.Open(context.Background(), fsstore.Options{
		Connection: fsclient.Options{ProjectID: project, EmulatorHost: fsemu.Host(t)}, CounterFlushInterval: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	lossy := &lostAnswer{Store: b}
	j, err := journal.Open(filepath.Join(t.TempDir(), "journal.db"), lossy, journal.Options{MinBackoff: 20 * time.Millisecond})
	if err != nil {
		b.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	ctx := context.Background()
	if out, err := j.RecordMessage(ctx, msg(0)); err != nil || out != store.Wrote {
		t.Fatalf("RecordMessage = %v, %v; want a provisional wrote (journaled after the lost answer)", out, err)
	}
	fctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := j.Flush(fctx); err != nil {
		t.Fatal(err)
	}
	lossy.mu.Lock()
	outs := append([]store.Outcome(nil), lossy.outs...)
	lossy.mu.Unlock()
	if len(outs) != 2 || outs[0] != store.Wrote || outs[1] != store.Wrote {
		t.Fatalf("backend outcomes %v: want [wrote wrote] (the shipment recognised as the lost write by its token)", outs)
	}
	landed(t, c, 1)
}
