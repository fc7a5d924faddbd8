package daemon

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"github.com/wactl/wactl/pkg/histq"
)

// Durable history sync (issue 14.1). whatsmeow acknowledges a history-sync
// notification as soon as the event handler returns, and its own download
// loop ignores the handler's answer; so clients run with
// ManualHistorySyncDownload, the notification arrives as an events.Message,
// and the handler returns true only once the notification (with any inline
// payload) is committed to the history queue (pkg/histq). The worker in
// history_worker.go records it from there.

// historyNotification returns the history-sync notification a message
// carries, or nil. Only our own phone sends them (whatsmeow ignores the
// protocol message from anyone else).
func historyNotification(e *events.Message) *waE2E.HistorySyncNotification {
	if !e.Info.IsFromMe {
		return nil
	}
	return e.Message.GetProtocolMessage().GetHistorySyncNotification()
}

// queueHistory commits a notification; false means "not durable, do not
// acknowledge": WhatsApp redelivers it.
func (a *account) queueHistory(e *events.Message, n *waE2E.HistorySyncNotification) bool {
	h := a.m.histWorker()
	q := h.queue()
	if q == nil {
		a.m.log.Error("history sync not accepted: the history queue is not open; WhatsApp will redeliver it", "account", a.id, "id", e.Info.ID)
		return false
	}
	raw, err := proto.Marshal(n)
	if err != nil {
		a.m.log.Error("history sync notification cannot be encoded", "account", a.id, "id", e.Info.ID, "err", err)
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	created, err := q.Put(ctx, a.id, e.Info.ID, raw)
	if err != nil {
		a.m.log.Error("history sync not queued; WhatsApp will redeliver it", "account", a.id, "id", e.Info.ID, "err", err)
		return false
	}
	if created {
		a.m.log.Info("history sync queued", "account", a.id, "id", e.Info.ID, "type", n.GetSyncType().String(),
			"chunk", n.GetChunkOrder(), "inline", n.InitialHistBootstrapInlinePayload != nil)
	}
	h.kick()
	return true
}

// HistoryPolicy tunes the history worker.
type HistoryPolicy struct {
	// MaxAttempts is how many failed downloads of one notification make it
	// a counted loss (default 8).
	MaxAttempts int
	// Backoff is the wait after the n-th failed download (n from 1);
	// default 2 s doubling up to 10 min.
	Backoff func(n int) time.Duration
	// StoreBackoff is the wait after the store refused a batch (default
	// 2 s doubling up to 1 min); store refusals are never a loss.
	StoreBackoff func(n int) time.Duration
	// Poll is how often the worker looks for due entries without being
	// woken (default 1 s).
	Poll time.Duration
}

func (p HistoryPolicy) withDefaults() HistoryPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = 8
	}
	if p.Backoff == nil {
		p.Backoff = doubling(2*time.Second, 10*time.Minute)
	}
	if p.StoreBackoff == nil {
		p.StoreBackoff = doubling(2*time.Second, time.Minute)
	}
	if p.Poll <= 0 {
		p.Poll = time.Second
	}
	return p
}

func doubling(first, max time.Duration) func(int) time.Duration {
	return func(n int) time.Duration {
		d := first
		for i := 1; i < n && d < max; i++ {
			d *= 2
		}
		return min(d, max)
	}
}

// historyWorker owns the queue file and the goroutine that records it.
type historyWorker struct {
	m      *Manager
	policy HistoryPolicy

	mu      sync.Mutex
	q       *histq.Queue
	cancel  context.CancelFunc
	done    chan struct{}
	wake    chan struct{}
	refused map[int64]int // entry → store refusals in a row (backoff only)
	cached  HistoryStatus // history_status.go
}

// workers attaches one history worker to each Manager without widening
// the Manager (its connect path is another file's job).
var workers sync.Map // *Manager → *historyWorker

// hist returns the manager's history worker, creating it.
func (m *Manager) histWorker() *historyWorker {
	if h, ok := workers.Load(m); ok {
		return h.(*historyWorker)
	}
	h, _ := workers.LoadOrStore(m, &historyWorker{m: m, wake: make(chan struct{}, 1), refused: map[int64]int{}})
	return h.(*historyWorker)
}

// OpenHistory opens the history queue at path (default: beside the
// sessions directory), makes every client this manager creates hand
// history-sync notifications to it (ManualHistorySyncDownload), and starts
// recording it whenever the manager is ACTIVE. It must be called before
// Activate; a manager without a queue keeps whatsmeow's automatic download.
func (m *Manager) OpenHistory(path string, p HistoryPolicy) error {
	if path == "" {
		path = filepath.Join(filepath.Dir(m.o.Sessions.Root()), histq.FileName)
	}
	q, err := histq.Open(path, histq.Options{Now: m.o.Now})
	if err != nil {
		return err
	}
	h := m.histWorker()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.q != nil {
		q.Close()
		return errors.New("history queue already open")
	}
	h.q, h.policy = q, p.withDefaults()
	prev := m.o.ConfigureClient
	m.o.ConfigureClient = func(cli *whatsmeow.Client) {
		cli.ManualHistorySyncDownload = true
		if prev != nil {
			prev(cli)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan struct{})
	go h.run(ctx, h.done)
	return nil
}

// CloseHistory stops the worker (an entry in progress keeps its cursor)
// and closes the queue.
func (m *Manager) CloseHistory() {
	h := m.histWorker()
	h.mu.Lock()
	cancel, done, q := h.cancel, h.done, h.q
	h.cancel, h.q = nil, nil
	h.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	if q != nil {
		q.Close()
	}
	workers.Delete(m)
}

func (h *historyWorker) queue() *histq.Queue {
	if h == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.q
}

func (h *historyWorker) kick() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// HistoryStatus is the history queue as /health, /metrics and doctor show
// it.
type HistoryStatus struct {
	Pending int          // notifications queued, not yet fully recorded
	Lost    int          // notifications given up (named in Losses)
	Losses  []histq.Loss // each with its reason
	Parked  int          // edits/revokes waiting for their target
	Dropped int          // parked edits/revokes dropped at the bound since start

	Skipped           map[string]int64 // history messages not recorded, by reason
	PerAccountSkipped map[string]map[string]int64
	PerAccountPending map[string]int
	PerAccountLost    map[string]int
}

// HistoryStatus reads the queue's counts (a few small queries).
func (m *Manager) HistoryStatus(ctx context.Context) (HistoryStatus, error) {
	q := m.histWorker().queue()
	var s HistoryStatus
	if q == nil {
		return s, errors.New("history queue not open")
	}
	st, err := q.Stats(ctx)
	if err != nil {
		return s, err
	}
	s.Pending, s.Lost, s.Parked, s.Dropped = st.Pending, st.Lost, st.Parked, st.ParkedDropped
	if s.Losses, err = q.Losses(ctx); err != nil {
		return s, err
	}
	if s.PerAccountPending, err = q.Pending(ctx); err != nil {
		return s, err
	}
	if s.PerAccountLost, err = q.LossCounts(ctx); err != nil {
		return s, err
	}
	if s.PerAccountSkipped, err = q.Skips(ctx); err != nil {
		return s, err
	}
	s.Skipped = map[string]int64{}
	for _, by := range s.PerAccountSkipped {
		for r, n := range by {
			s.Skipped[r] += n
		}
	}
	return s, nil
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return fmt.Sprint(err)
}

// recordHistory handles an events.HistorySync, which whatsmeow dispatches
// only from its automatic download loop. Clients run with
// ManualHistorySyncDownload, so none should arrive; one that does is
// acknowledged already and cannot be kept safer than recording it now.
func (a *account) recordHistory(e *events.HistorySync) bool {
	a.m.log.Warn("unexpected automatic history sync event; history is recorded through the queue", "account", a.id)
	return true
}
