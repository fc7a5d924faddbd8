package serve_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	firestorepb "cloud.google.com/go/firestore/apiv1/firestorepb"
	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/proto/waWeb"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/watest"
	"github.com/wactl/wactl/pkg/sessions"
)

// historySize is the size of the kill -9 history test: the 20,000
// messages with WACTL_HISTORY_FULL=1; by default (CI) 4,000 on the
// embedded store and 1,000 on the emulator, which writes about 300
// documents a second.
func historySize(backend string) int {
	switch {
	case os.Getenv("WACTL_HISTORY_FULL") == "1":
		return 20000
	case backend == "firestore":
		return 1000
	}
	return 4000
}

// syncChunks builds n history messages in `chunks` notifications, 100
// messages per conversation.
func syncChunks(n, chunks int) []*waHistorySync.HistorySync {
	per := n / chunks
	base := time.Now().Add(-30 * 24 * time.Hour)
	var out []*waHistorySync.HistorySync
	for c := 0; c < chunks; c++ {
		hs := &waHistorySync.HistorySync{ChunkOrder: proto.Uint32(uint32(c + 1)), Progress: proto.Uint32(uint32((c + 1) * 100 / chunks))}
		for i := 0; i < per; i += 100 {
			peer := types.NewJID(fmt.Sprintf("4078%02d%06d", c, i/100), types.DefaultUserServer)
			conv := &waHistorySync.Conversation{ID: proto.String(peer.String())}
			for k := i; k < min(i+100, per); k++ {
				conv.Messages = append(conv.Messages, &waHistorySync.HistorySyncMsg{Message: &waWeb.WebMessageInfo{
					Key: &waCommon.MessageKey{RemoteJID: proto.String(peer.String()), FromMe: proto.Bool(k%4 == 0),
						ID: proto.String(fmt.Sprintf("HS%02d%06d", c, k))},
					Message:          &waE2E.Message{Conversation: proto.String("history message " + strconv.Itoa(k))},
					MessageTimestamp: proto.Uint64(uint64(base.Add(time.Duration(c*per+k) * time.Second).Unix())),
				}})
			}
			hs.Conversations = append(hs.Conversations, conv)
		}
		out = append(out, hs)
	}
	return out
}

// TestHistorySyncSurvivesKill9: the fake phone sends a history of N
// messages in five notifications (the first inline, the others as blobs on
// the media server); the `wactl serve` child is killed with SIGKILL at
// about 2 %, 50 % and 99 % of the recording and restarted each time. In the
// end exactly N message documents exist and nothing is pending at the
// server — on the embedded store and on Firestore (emulator). On ca70e15
// the history was acknowledged on arrival and what was not recorded at
// the kill was lost.
func TestHistorySyncSurvivesKill9(t *testing.T) {
	for _, backend := range []string{"embedded", "firestore"} {
		t.Run(backend, func(t *testing.T) {
			testHistoryKill9(t, backend, historySize(backend))
		})
	}
}

func testHistoryKill9(t *testing.T, backend string, n int) {
	srv := wafake.Start(t)
	dataDir := t.TempDir()
	var env []string
	var count func() int
	sess, err := sessions.Open(filepath.Join(dataDir, "sessions"), sessions.Options{})
	if err != nil {
		t.Fatal(err)
	}
	acct := watest.Pair(t, srv, sess, "40722000071")
	switch backend {
	case "embedded":
		count = embeddedCount(t, filepath.Join(dataDir, "wactl.db"), acct.ID)
	case "firestore":
		client, project := fsemu.NewClient(t)
		env = append(env, "WACTL_STORE_BACKEND=firestore", "GOOGLE_CLOUD_PROJECT="+project,
			"FIRESTORE_EMULATOR_HOST="+fsemu.Host(t))
		count = firestoreCount(t, client, acct.ID)
	}
	p := serve(t, srv, dataDir, env...)
	p.waitConnected(1, 20*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	// Notifications larger than a batch (400), so kills land inside one.
	chunks := 5
	if n < 4000 {
		chunks = 2
	}
	for i, hs := range syncChunks(n, chunks) {
		if _, err := srv.SendHistoryNotification(ctx, acct.Device, hs, wafake.HistoryOptions{Inline: i == 0}); err != nil {
			t.Fatal(err)
		}
	}
	var procs []*proc
	// Progress of the recording as the daemon commits it (on Firestore the
	// documents reach the emulator later, through the journal).
	progress := queueProgress(t, filepath.Join(dataDir, "history-queue.db"), chunks, n/chunks)
	for _, pct := range []int{2, 50, 99} {
		// Batches of 400 are committed at once: aim at the last commit
		// before the end so that the 99 % kill still leaves work (98 % of
		// 20,000; 90 % of the shorter CI forms).
		target := max(1, min(n*pct/100, n-400))
		deadline := time.Now().Add(90 * time.Second)
		got := progress()
		for got < target {
			if time.Now().After(deadline) {
				t.Fatalf("only %d of %d recorded before the %d %% kill", got, n, pct)
			}
			time.Sleep(2 * time.Millisecond)
			got = progress()
		}
		_ = p.cmd.Process.Kill()
		<-p.exited
		t.Logf("kill -9 at %d of %d recorded (aimed at %d %%)", progress(), n, pct)
		p = serve(t, srv, dataDir, env...)
		procs = append(procs, p)
		p.waitConnected(1, 20*time.Second)
	}
	watest.Eventually(t, 120*time.Second, fmt.Sprintf("%d documents", n), func() bool { return count() >= n })
	time.Sleep(300 * time.Millisecond) // a duplicate, if any were written, would show now
	if got := count(); got != n {
		t.Fatalf("%d documents after the kills, want exactly %d", got, n)
	}
	resumed := 0
	for _, q := range procs {
		if strings.Contains(q.log(), "resumed from its cursor") {
			resumed++
		}
	}
	if resumed == 0 {
		t.Fatal("no restart resumed a history sync from its cursor: the kills missed the recording")
	}
	if pend := srv.HistoryPending(acct.Device); len(pend) != 0 {
		t.Fatalf("history notifications still pending at the server: %v", pend)
	}
	t.Logf("%d messages recorded across three kill -9 in %s", n, time.Since(start))
}

// queueProgress reads how many history messages the daemon has committed,
// from its history queue: finished notifications are deleted, the others
// carry their cursor. It counts 0 until all `notes` are queued.
func queueProgress(t *testing.T, path string, notes, per int) func() int {
	return func() int {
		if _, err := os.Stat(path); err != nil {
			return 0
		}
		db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(5000)")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var left, recorded, lost int
		if err := db.QueryRow(`SELECT count(*), coalesce(sum(recorded), 0), (SELECT count(*) FROM losses) FROM entries`).Scan(&left, &recorded, &lost); err != nil {
			return 0
		}
		if lost > 0 {
			t.Errorf("%d history notifications lost", lost)
		}
		if seen := db.QueryRow(`SELECT seq FROM sqlite_sequence WHERE name = 'entries'`).Scan(new(int)); seen != nil {
			return 0
		}
		var ever int
		_ = db.QueryRow(`SELECT seq FROM sqlite_sequence WHERE name = 'entries'`).Scan(&ever)
		if ever < notes {
			return 0
		}
		return (notes-left)*per + recorded
	}
}

// embeddedCount counts the account's message rows in the SQLite store
// while the child writes it (WAL readers do not block the writer).
func embeddedCount(t *testing.T, path, account string) func() int {
	return func() int {
		if _, err := os.Stat(path); err != nil {
			return 0
		}
		db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(5000)")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var c int
		if err := db.QueryRow(`SELECT count(*) FROM messages WHERE account_id = ?`, account).Scan(&c); err != nil {
			return 0
		}
		return c
	}
}

// firestoreCount counts the account's message documents on the emulator.
func firestoreCount(t *testing.T, client *firestore.Client, account string) func() int {
	return func() int {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		q := client.CollectionGroup("messages").Where("accountId", "==", account)
		res, err := q.NewAggregationQuery().WithCount("n").Get(ctx)
		if err != nil {
			return 0
		}
		v, ok := res["n"].(*firestorepb.Value)
		if !ok {
			return 0
		}
		return int(v.GetIntegerValue())
	}
}
