package cleanup

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/wactl/wactl/pkg/audit/audittest"
	"github.com/wactl/wactl/pkg/store"
	"github.com/wactl/wactl/pkg/store/sqlite"
)

// liveMessage is a message the daemon records during the run.
func liveMessage(thread, id string, ts time.Time) store.Message {
	return store.Message{
		AccountID: audittest.Account, ThreadID: thread, DocID: id,
		ClientJID: thread[len(audittest.Account)+2:], PeerType: "user",
		Direction: "inbound", Body: "live " + id, WAMessageID: "LIVE-" + id, ProviderMessageID: "LIVE-" + id,
		Status: "delivered", MessageType: "text", TsClient: ts, Source: "realtime",
		StableKeyHash: fmt.Sprintf("%08x", len(id)*7919+int(ts.UnixMilli()%100000)),
	}
}

// The daemon keeps recording through the store while a cleanup of 600
// duplicates (two batches) runs against the same file: a redelivery of the
// message whose copy the run marks arrives between plan and write, one
// message between the batches, and a stream into another thread throughout.
// The thread summary points at the copy the run marks, so recomputing it
// moves it back — but never past the live messages.
func TestEmbeddedConcurrentRecording(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "wactl.db")
	data := audittest.Many(now, 600)
	if err := audittest.WriteSQLite(ctx, path, data); err != nil {
		t.Fatal(err)
	}
	before := sqlSnapshot(t, path)
	s, err := sqlite.Open(ctx, sqlite.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	var mu sync.Mutex
	recorded := map[string]time.Time{} // thread/doc of every live message
	newest := map[string]time.Time{}
	record := func(m store.Message) {
		o, err := s.RecordMessage(ctx, m)
		if err != nil || o != store.Wrote {
			t.Errorf("record %s: %v %v", m.DocID, o, err)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		recorded[m.ThreadID+"/"+m.DocID] = m.TsClient
		if m.TsClient.After(newest[m.ThreadID]) {
			newest[m.ThreadID] = m.TsClient
		}
	}
	orig := data[0].Fields["tsClient"].(time.Time) // the copy is 30 s later
	threadC := audittest.Account + "__40733333333@s.whatsapp.net"
	stop := make(chan struct{})
	var wg sync.WaitGroup
	opts := Options{Selection: manySel(), Apply: true}
	opts.afterPlan = func() {
		// A redelivery of the newest message under new ids: same stable
		// key, so it joins the group the plan marks.
		m := liveMessage(audittest.ThreadA, "live-a", orig.Add(10*time.Second))
		m.StableKeyHash = data[0].Fields["stableKeyHash"].(string)
		record(m)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				record(liveMessage(threadC, fmt.Sprintf("live-c%d", i), now.Add(-time.Hour+time.Duration(i)*time.Second)))
				time.Sleep(2 * time.Millisecond) // the daemon's pace, not a write storm
			}
		}()
	}
	batches := 0
	opts.Progress = func(done, total int) {
		batches++
		if batches == 1 {
			record(liveMessage(audittest.ThreadA, "live-p", orig.Add(5*time.Second)))
			// Let the stream commit while the run is between batches.
			mu.Lock()
			n := len(recorded)
			mu.Unlock()
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
				mu.Lock()
				m := len(recorded)
				mu.Unlock()
				if m >= n+3 {
					break
				}
			}
		}
	}
	res, err := Run(ctx, openEmbedded(t, path), opts)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if res.Marked != 600 || batches != 2 || res.ThreadsUpdated != 1 {
		t.Fatalf("apply: %+v after %d batches", res, batches)
	}
	t.Logf("%d live messages recorded during the run", len(recorded))
	if len(recorded) < 5 {
		t.Fatalf("only %d live messages recorded", len(recorded))
	}

	after := sqlSnapshot(t, path)
	if len(after.msgs) != len(before.msgs)+len(recorded) {
		t.Fatalf("%d messages, want %d seeded + %d recorded", len(after.msgs), len(before.msgs), len(recorded))
	}
	for p := range recorded {
		if m, ok := after.msgs[p]; !ok || m[0] != 0 {
			t.Fatalf("live message %s: %v (present %v)", p, m, ok)
		}
	}
	if n := after.countMarked(); n != 600 {
		t.Fatalf("%d marked, want the 600 planned copies", n)
	}
	// Thread A moved back from the marked copy to the newest live message,
	// not to the original the plan saw; thread C is at its newest message.
	if got, want := after.threads[audittest.ThreadA], [2]any{newest[audittest.ThreadA].UnixMilli(), "live live-a"}; got != want {
		t.Fatalf("thread A summary %v, want %v", got, want)
	}
	if got := after.threads[threadC][0]; got != newest[threadC].UnixMilli() {
		t.Fatalf("thread C summary at %v, want its newest message %d", got, newest[threadC].UnixMilli())
	}
	// Every summary is the newest unmarked message of its thread.
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for th, sum := range after.threads {
		var ms int64
		if err := db.QueryRow(`SELECT max(ts_client_ms) FROM messages WHERE thread_id = ? AND is_duplicate = 0`, th).Scan(&ms); err != nil {
			t.Fatal(err)
		}
		if sum[0] != ms {
			t.Fatalf("thread %s summary at %v, newest unmarked message at %d", th, sum[0], ms)
		}
	}
}
