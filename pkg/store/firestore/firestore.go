package firestore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/wactl/wactl/pkg/dedupe"
	"github.com/wactl/wactl/pkg/fsclient"
	"github.com/wactl/wactl/pkg/store"
)

// SchemaVersion is written in every message document as schemaVersion.
const SchemaVersion = 2

// Collection names of the contract.
const (
	colAccounts   = "accounts"
	colThreads    = "threads"
	colMessages   = "messages"
	colMessageIDs = "message_ids"
	colOutbox     = "outbox"
	colMetrics    = "wa_metrics"
)

// Options configures the Firestore backend.
type Options struct {
	// Client is used when set (and not closed by Close); otherwise a client is
	// opened with Connection and closed by Close.
	Client     *firestore.Client
	Connection fsclient.Options
	// StrongDedupe skips a message whose fingerprint already exists in the
	// same thread under another WhatsApp id. Off by default, as in the old
	// system: two genuinely different messages with the same text sent in
	// the same millisecond would be merged, and it costs a query per message.
	StrongDedupe bool
	// CounterFlushInterval is how often counter deltas are persisted
	// (default 2s): one write per account per interval instead of one per
	// message keeps the counter document from becoming a hot spot.
	CounterFlushInterval time.Duration
	// Fence makes this store a fenced writer (serve's): see fence.go.
	Fence  func() (epoch int64, held bool)
	Logger *slog.Logger
	Now    func() time.Time
}

// Store is the Firestore backend. It is safe for concurrent use.
type Store struct {
	c         *firestore.Client
	ownClient bool
	strong    bool
	log       *slog.Logger
	now       func() time.Time

	fence    func() (int64, bool) // nil: not a lease participant (operator tools)
	counters *counterBook
	blindOK  atomic.Bool // the last batch was all new: write the next one blind
	threads  threadCache // thread summaries as last written: see threadcache.go

	healthMu  sync.Mutex
	lastError string
	lastErrAt time.Time

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

var _ store.Store = (*Store)(nil)

// Open returns a Firestore store. It does not contact Firestore: a store
// behind the journal must start while Firestore is unreachable.
func Open(ctx context.Context, o Options) (*Store, error) {
	c, own := o.Client, false
	if c == nil {
		var err error
		c, err = fsclient.New(ctx, o.Connection)
		if err != nil {
			return nil, err
		}
		own = true
	}
	s := &Store{
		c: c, ownClient: own, strong: o.StrongDedupe,
		log: o.Logger, now: o.Now, fence: o.Fence,
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.counters = newCounterBook(s)
	s.blindOK.Store(true)
	every := o.CounterFlushInterval
	if every <= 0 {
		every = 2 * time.Second
	}
	go s.flushLoop(every)
	return s, nil
}

// Client returns the underlying client (tests and tools such as audit use it).
func (s *Store) Client() *firestore.Client { return s.c }

func (s *Store) flushLoop(every time.Duration) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := s.counters.flush(ctx); err != nil {
				s.noteErr(err)
			}
			cancel()
		}
	}
}

// Flush persists pending counter deltas. Messages are durable when
// RecordMessage returns, so there is nothing else to wait for.
func (s *Store) Flush(ctx context.Context) error {
	return s.counters.flush(ctx)
}

// Close persists counters (best effort, 5 s) and releases the client if it
// was opened here.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.done
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if ferr := s.counters.flush(ctx); ferr != nil {
			err = fmt.Errorf("firestore store: counters not persisted on close: %w", ferr)
		}
		if n := s.counters.pendingCount(); n > 0 {
			s.log.Warn("counter deltas dropped: this process holds no lease epoch (messages themselves are stored)", "counts", n)
		}
		if s.ownClient {
			if cerr := s.c.Close(); cerr != nil && err == nil {
				err = cerr
			}
		}
	})
	return err
}

// Health probes Firestore with a 2 s read of a small document.
func (s *Store) Health(ctx context.Context) store.Health {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	h := store.Health{Backend: "firestore"}
	_, err := s.c.Collection(colMetrics).Doc("health").Get(ctx)
	if err == nil || isNotFound(err) {
		h.Reachable = true
	} else {
		s.noteErr(err)
	}
	s.healthMu.Lock()
	h.LastError = s.lastError
	s.healthMu.Unlock()
	return h
}

func (s *Store) noteErr(err error) {
	if err == nil {
		return
	}
	s.healthMu.Lock()
	s.lastError = err.Error()
	s.lastErrAt = s.now()
	s.healthMu.Unlock()
}

// mappingRef is message_ids/{dedupe.MappingDocID}: the old service's id
// where Firestore takes it as it is, else a hash (never shared by two ids).
func (s *Store) mappingRef(accountID, waID string) *firestore.DocumentRef {
	return s.c.Collection(colMessageIDs).Doc(dedupe.MappingDocID(accountID, waID))
}

func (s *Store) threadRef(threadID string) *firestore.DocumentRef {
	return s.c.Collection(colThreads).Doc(threadID)
}

func (s *Store) messageRef(threadID, docID string) *firestore.DocumentRef {
	return s.threadRef(threadID).Collection(colMessages).Doc(docID)
}

func validate(m *store.Message) error {
	switch {
	case m.AccountID == "":
		return errors.New("store: message without accountId")
	case m.ThreadID == "":
		return errors.New("store: message without threadId")
	case m.DocID == "":
		return errors.New("store: message without document id")
	case strings.ContainsRune(m.ThreadID, '/') || strings.ContainsRune(m.DocID, '/'):
		return fmt.Errorf("store: threadId %q / docId %q contain '/'", m.ThreadID, m.DocID)
	case !strings.HasPrefix(m.ThreadID, m.AccountID+"__"):
		return fmt.Errorf("store: threadId %q does not belong to account %s", m.ThreadID, m.AccountID)
	}
	return nil
}
