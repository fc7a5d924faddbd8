package latency

import (
	"context"
	"database/sql"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	_ "modernc.org/sqlite"
)

// arrivals is when each message id was first readable (with the wanted
// status, when one is wanted).
type arrivals struct {
	mu sync.Mutex
	at map[string]time.Time
	// ver is the store's update time of the version first seen (Firestore
	// listeners only): when the emulator applied the commit.
	ver map[string]time.Time
}

func newArrivals() *arrivals {
	return &arrivals{at: map[string]time.Time{}, ver: map[string]time.Time{}}
}

func (a *arrivals) mark(id string, t time.Time) {
	a.mu.Lock()
	if _, ok := a.at[id]; !ok {
		a.at[id] = t
	}
	a.mu.Unlock()
}

// markVersion is mark plus the update time of the version seen.
func (a *arrivals) markVersion(id string, t, updated time.Time) {
	a.mu.Lock()
	if _, ok := a.at[id]; !ok {
		a.at[id] = t
		a.ver[id] = updated
	}
	a.mu.Unlock()
}

// snapshot copies what arrived (seen times and versions).
func (a *arrivals) snapshot() (seen, versions map[string]time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	seen, versions = make(map[string]time.Time, len(a.at)), make(map[string]time.Time, len(a.ver))
	for k, v := range a.at {
		seen[k] = v
	}
	for k, v := range a.ver {
		versions[k] = v
	}
	return seen, versions
}

func (a *arrivals) get(id string) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.at[id]
	return t, ok
}

// waitAll waits until every id is readable or d passes.
func (a *arrivals) waitAll(ids []string, d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		missing := false
		for _, id := range ids {
			if _, ok := a.get(id); !ok {
				missing = true
				break
			}
		}
		if !missing {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// watchSQLite is the embedded store's reader: a read loop on its own
// read-only connection, every millisecond, for rows newer than the last it
// saw, marking wa_message_id (with status want, when want is set). The
// same loop reads the baseline's file.
func watchSQLite(tb testing.TB, path, want string, a *arrivals) {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(10000)&_pragma=query_only(1)")
	if err != nil {
		tb.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	tb.Cleanup(func() { cancel(); <-done; db.Close() })
	go func() {
		defer close(done)
		var last int64
		for ctx.Err() == nil {
			rows, err := db.QueryContext(ctx, `SELECT seq, wa_message_id, status FROM messages WHERE seq > ? ORDER BY seq`, last)
			if err == nil {
				now := time.Now()
				for rows.Next() {
					var seq int64
					var id, st string
					if rows.Scan(&seq, &id, &st) == nil {
						last = seq
						if want == "" || st == want {
							a.mark(id, now)
						}
					}
				}
				rows.Close()
			}
			time.Sleep(time.Millisecond)
		}
	}()
}

// watchThreads is the Flutter app's reader: a snapshot listener on each
// thread's messages, marking waMessageId (with status want, when set).
func watchThreads(tb testing.TB, fs *firestore.Client, threads []string, want string, a *arrivals) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	tb.Cleanup(func() { cancel(); wg.Wait() })
	ready := make(chan struct{}, len(threads))
	for _, th := range threads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			it := fs.Collection("threads").Doc(th).Collection("messages").Snapshots(ctx)
			defer it.Stop()
			first := true
			for {
				snap, err := it.Next()
				if err != nil {
					return
				}
				now := time.Now()
				for _, ch := range snap.Changes {
					if ch.Kind == firestore.DocumentRemoved {
						continue
					}
					m := ch.Doc.Data()
					id, _ := m["waMessageId"].(string)
					st, _ := m["status"].(string)
					if id != "" && (want == "" || st == want) {
						a.markVersion(id, now, ch.Doc.UpdateTime)
					}
				}
				if first {
					first = false
					ready <- struct{}{}
				}
			}
		}()
	}
	for range threads {
		select {
		case <-ready:
		case <-time.After(30 * time.Second):
			tb.Fatal("a thread listener gave no first snapshot in 30 s")
		}
	}
}
