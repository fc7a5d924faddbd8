package latency

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	"go.mau.fi/whatsmeow/types"

	"github.com/wactl/wactl/bench/internal/benchd"
	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/watest"
	"github.com/wactl/wactl/pkg/dedupe"
)

// accountsN is the spread: 20 accounts.
const accountsN = 20

// rig is one daemon with its accounts, on one backend, and the bare
// baseline writer on the same store.
type rig struct {
	backend string
	srv     *wafake.Server
	d       *benchd.Daemon
	accts   []watest.Account
	fs      *firestore.Client // firestore backend
	bare    *sql.DB           // embedded backend: the baseline's file
	barePth string
	pprof   string // the child's pprof listener, when profiling
	profDir string
}

func newRig(b *testing.B, backend string) *rig {
	b.Helper()
	srv, err := wafake.New(wafake.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	dataDir := b.TempDir()
	r := &rig{backend: backend, srv: srv}
	r.accts = benchd.PairAccounts(b, srv, dataDir, accountsN, "4076610")
	var env []string
	switch backend {
	case "firestore":
		fs, project := fsemu.NewClient(b)
		r.fs = fs
		env = append(env, "WACTL_STORE_BACKEND=firestore", "GOOGLE_CLOUD_PROJECT="+project,
			"FIRESTORE_EMULATOR_HOST="+fsemu.Host(b))
	case "embedded":
		// The baseline's file: beside the daemon's, same pragmas as the
		// store (WAL, synchronous=FULL: a commit is on disk when it returns).
		r.barePth = filepath.Join(b.TempDir(), "bare.db")
		db, err := sql.Open("sqlite", "file:"+r.barePth+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)")
		if err != nil {
			b.Fatal(err)
		}
		db.SetMaxOpenConns(1)
		b.Cleanup(func() { db.Close() })
		if _, err := db.Exec(`CREATE TABLE messages (seq INTEGER PRIMARY KEY, doc_id TEXT NOT NULL UNIQUE,
			thread_id TEXT NOT NULL, wa_message_id TEXT NOT NULL, status TEXT NOT NULL, body TEXT NOT NULL, rest TEXT NOT NULL)`); err != nil {
			b.Fatal(err)
		}
		r.bare = db
	}
	if dir := os.Getenv("WACTL_BENCH_PROFILE_DIR"); dir != "" {
		r.pprof = fmt.Sprintf("127.0.0.1:%d", benchd.FreePort(b))
		r.profDir = dir
		env = append(env, "WACTL_BENCH_PPROF="+r.pprof)
		// Printed so that a CPU profile of the daemon can be taken by hand
		// during a phase: curl http://ADDR/debug/pprof/profile?seconds=N.
		logf(b, "daemon's pprof listener: %s", r.pprof)
	}
	r.d = benchd.Start(b, srv, dataDir, env...)
	r.d.WaitConnected(b, accountsN, 120*time.Second)
	return r
}

func peerJID(prefix string, i int) types.JID {
	return types.NewJID(fmt.Sprintf("%s%04d", prefix, i), types.DefaultUserServer)
}

func (r *rig) thread(i int, peer types.JID) string {
	return dedupe.ThreadID(r.accts[i].ID, dedupe.CanonicalJID(peer.String()))
}

// watch starts the app-side reader of the daemon's documents on threads.
func (r *rig) watch(b *testing.B, threads []string, want string) *arrivals {
	a := newArrivals()
	if r.backend == "firestore" {
		watchThreads(b, r.fs, threads, want, a)
	} else {
		watchSQLite(b, filepath.Join(r.d.Data, "wactl.db"), want, a)
	}
	return a
}

// baseline is the bare client: one equivalent document written to the same
// store from this host, read by the same kind of reader.
type baseline struct {
	r       *rig
	threads []string
	tmpl    map[string]any
	seen    *arrivals
}

func (r *rig) baseline(b *testing.B) *baseline {
	bl := &baseline{r: r, seen: newArrivals()}
	for i := range accountsN {
		bl.threads = append(bl.threads, fmt.Sprintf("bench-baseline-%02d", i))
	}
	if r.backend == "firestore" {
		bl.tmpl = r.sampleDoc(b)
		watchThreads(b, r.fs, bl.threads, "", bl.seen)
	} else {
		watchSQLite(b, r.barePth, "", bl.seen)
	}
	return bl
}

// sampleDoc copies one message document the daemon wrote (the warm-up's),
// so the baseline writes a document of the same shape and size.
func (r *rig) sampleDoc(b *testing.B) map[string]any {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	docs, err := r.fs.CollectionGroup("messages").Limit(1).Documents(ctx).GetAll()
	if err != nil || len(docs) == 0 {
		b.Fatalf("no message document to copy for the baseline: %v", err)
	}
	return docs[0].Data()
}

// write writes one baseline document for message id on worker w's thread.
func (bl *baseline) write(w int, id string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if bl.r.backend == "firestore" {
		doc := make(map[string]any, len(bl.tmpl))
		for k, v := range bl.tmpl {
			doc[k] = v
		}
		doc["waMessageId"], doc["id"] = id, id
		_, err := bl.r.fs.Collection("threads").Doc(bl.threads[w]).Collection("messages").Doc(id).Create(ctx, doc)
		return err
	}
	_, err := bl.r.bare.ExecContext(ctx, `INSERT INTO messages (doc_id, thread_id, wa_message_id, status, body, rest) VALUES (?,?,?,?,?,?)`,
		id, bl.threads[w], id, "received", "bench message", strings.Repeat("x", 600))
	return err
}
