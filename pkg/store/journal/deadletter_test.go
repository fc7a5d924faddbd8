package journal_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/pkg/store"
	"github.com/wactl/wactl/pkg/store/journal"
)

const otherAccount = "account_test_00000000000000000000000000000002"

// poison is a message Firestore refuses for good however often it is
// shipped (InvalidArgument): its document id is one Firestore reserves.
func poison(i int) store.Message {
	m := msg(i)
	m.DocID = "__poison__"
	return m
}

// goodOther is a well-formed message of another account.
func goodOther(i int) store.Message {
	m := msg(i)
	m.AccountID = otherAccount
	m.ThreadID = otherAccount + "__" + m.ClientJID
	return m
}

// messageLanded polls Firestore for the message document of m.
func messageLanded(t *testing.T, c *firestore.Client, m store.Message, within time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if _, err := c.Collection("threads").Doc(m.ThreadID).Collection("messages").Doc(m.DocID).Get(context.Background()); err == nil {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// One entry Firestore refuses for good (inline, then in the background)
// must not hold back the entries behind it, of its own account or another.
func TestRefusedEntryDoesNotBlockShipping(t *testing.T) {
	t.Parallel()
	for _, noInline := range []bool{false, true} {
		name := "inline"
		if noInline {
			name = "background"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c, project := fsemu.NewClient(t)
			j := open(t, fsemu.Host(t), project, filepath.Join(t.TempDir(), "journal.db"), journal.Options{
				NoInline: noInline, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
				MaxRefusals: 3, RefusalBackoff: 100 * time.Millisecond,
			}, false, nil)
			ctx := context.Background()
			bad := poison(1)
			if _, err := j.RecordMessage(ctx, bad); err != nil {
				t.Logf("poison: %v", err)
			}
			later := []store.Message{goodOther(2), msg(3)}
			for _, m := range later {
				if _, err := j.RecordMessage(ctx, m); err != nil {
					t.Fatalf("record %s: %v", m.WAMessageID, err)
				}
			}
			for _, m := range later {
				if !messageLanded(t, c, m, 10*time.Second) {
					t.Fatalf("message %s of %s never reached Firestore behind a refused entry (health %+v)", m.WAMessageID, m.AccountID, j.Health(ctx))
				}
			}
			// Refused three times, the entry is a dead letter, counted, and
			// the journal is otherwise empty: Flush returns.
			fctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			if err := j.Flush(fctx); err != nil {
				t.Fatalf("flush: %v (health %+v)", err, j.Health(ctx))
			}
			h := j.Health(ctx)
			if h.JournalBacklog != 0 || h.JournalDeadLetters != 1 {
				t.Fatalf("health after flush: %+v, want backlog 0 and 1 dead letter", h)
			}
			dl, err := j.DeadLetters(ctx)
			if err != nil || len(dl) != 1 {
				t.Fatalf("dead letters %+v, %v", dl, err)
			}
			d := dl[0]
			if d.Account != testAccount || d.Kind != "live" || d.Ref != bad.WAMessageID || d.Code != "InvalidArgument" ||
				!strings.Contains(d.Error, "__poison__") || d.Attempts != 3 {
				t.Fatalf("dead letter %+v", d)
			}
			if messageLanded(t, c, bad, 0) {
				t.Fatal("the refused message is in Firestore")
			}
			// A retry queues it again; still refused, it comes back with its
			// error after three more refusals — never dropped.
			n, err := j.RetryDeadLetters(ctx, []int64{d.Seq})
			if err != nil || n != 1 {
				t.Fatalf("retry: %d, %v", n, err)
			}
			if h := j.Health(ctx); h.JournalDeadLetters != 0 || h.JournalBacklog != 1 {
				t.Fatalf("health after retry: %+v, want the entry back in the backlog", h)
			}
			if _, err := j.RetryDeadLetters(ctx, []int64{d.Seq}); !errors.Is(err, journal.ErrNoDeadLetter) {
				t.Fatalf("retry of an entry that is not a dead letter: %v", err)
			}
			if err := j.Flush(fctx); err != nil {
				t.Fatal(err)
			}
			if dl, err := j.DeadLetters(ctx); err != nil || len(dl) != 1 || dl[0].Seq != d.Seq {
				t.Fatalf("after the retry: %+v, %v", dl, err)
			}
		})
	}
}

// A history batch with one refused message: the shipper splits the batch
// until the refused message is alone; the other 39 land.
func TestRefusedHistoryMessageIsIsolated(t *testing.T) {
	t.Parallel()
	c, project := fsemu.NewClient(t)
	j := open(t, fsemu.Host(t), project, filepath.Join(t.TempDir(), "journal.db"), journal.Options{
		NoInline: true, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		MaxRefusals: 2, RefusalBackoff: 50 * time.Millisecond,
	}, false, nil)
	ctx := context.Background()
	var msgs []store.Message
	for i := 0; i < 40; i++ {
		m := msg(i)
		if i == 27 {
			m = poison(i)
		}
		m.Source = "history_sync"
		msgs = append(msgs, m)
	}
	if _, err := j.RecordHistory(ctx, testAccount, msgs); err != nil {
		t.Fatal(err)
	}
	fctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := j.Flush(fctx); err != nil {
		t.Fatalf("flush: %v (health %+v)", err, j.Health(ctx))
	}
	for i, m := range msgs {
		if landed := messageLanded(t, c, m, 0); landed != (i != 27) {
			t.Fatalf("message %d landed=%v", i, landed)
		}
	}
	dl, err := j.DeadLetters(ctx)
	if err != nil || len(dl) != 1 || dl[0].Kind != "history" || dl[0].Ref != msgs[27].WAMessageID || dl[0].Attempts != 2 {
		t.Fatalf("dead letters %+v, %v", dl, err)
	}
}

// A journal written before dead letters existed (schema 1, where a
// refused entry only had state 2) opens, lists that entry as a dead
// letter, ships its pending entry, and can be read by OpenAdmin.
func TestSchema1JournalKeepsItsDeadEntries(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "journal.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	good, _ := json.Marshal(msg(1))
	for _, q := range []string{
		`CREATE TABLE entries (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, account TEXT NOT NULL, mkey TEXT,
			payload BLOB, created_ms INTEGER NOT NULL, state INTEGER NOT NULL DEFAULT 0, done_ms INTEGER,
			attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT)`,
		`CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`,
		`INSERT INTO entries(kind, account, mkey, payload, created_ms, state, done_ms, last_error)
			VALUES ('live', '` + testAccount + `', '` + testAccount + `|3EB0OLD', x'7b', 1000, 2, 2000, 'store: message without threadId')`,
		`INSERT INTO entries(kind, account, mkey, payload, created_ms) VALUES ('live', '` + testAccount + `', '` + testAccount + `|` + msg(1).WAMessageID + `', '` + string(good) + `', 3000)`,
		`PRAGMA user_version = 1`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()
	if _, err := journal.OpenAdmin(path); err == nil || !strings.Contains(err.Error(), "start this version of wactl serve once") {
		t.Fatalf("OpenAdmin on a schema 1 journal: %v", err)
	}
	c, project := fsemu.NewClient(t)
	j := open(t, fsemu.Host(t), project, path, journal.Options{MinBackoff: 20 * time.Millisecond}, false, nil)
	ctx := context.Background()
	fctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := j.Flush(fctx); err != nil {
		t.Fatal(err)
	}
	if !messageLanded(t, c, msg(1), 5*time.Second) {
		t.Fatal("the pending entry of the old journal was not shipped")
	}
	dl, err := j.DeadLetters(ctx)
	if err != nil || len(dl) != 1 || dl[0].Seq != 1 || dl[0].Ref != "3EB0OLD" || dl[0].Error != "store: message without threadId" {
		t.Fatalf("dead letters of the old journal: %+v, %v", dl, err)
	}
	if h := j.Health(ctx); h.JournalDeadLetters != 1 || h.JournalBacklog != 0 {
		t.Fatalf("health %+v", h)
	}
	a, err := journal.OpenAdmin(path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if dl, err := a.DeadLetters(ctx); err != nil || len(dl) != 1 {
		t.Fatalf("admin dead letters %+v, %v", dl, err)
	}
	// Retried from the admin side (another process in production), the
	// undecodable entry comes straight back.
	if n, err := a.Retry(ctx, nil); err != nil || n != 1 {
		t.Fatalf("admin retry: %d, %v", n, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		dl, err := a.DeadLetters(ctx)
		if err == nil && len(dl) == 1 && dl[0].Code == "malformed" && dl[0].Error == "journal entry does not decode" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("retried undecodable entry: %+v, %v", dl, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The entry seen stalling the journal — a message with a 1,600-byte
// WhatsApp id — now has a mapping id Firestore accepts: it lands, and so
// does the message behind it.
func TestLongWhatsAppIDShips(t *testing.T) {
	t.Parallel()
	c, project := fsemu.NewClient(t)
	j := open(t, fsemu.Host(t), project, filepath.Join(t.TempDir(), "journal.db"), journal.Options{
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
	}, false, nil)
	ctx := context.Background()
	long := msg(1)
	long.WAMessageID = "3EB0" + strings.Repeat("L", 1596)
	long.WAMessageIDRaw = long.WAMessageID
	for _, m := range []store.Message{long, goodOther(2)} {
		if _, err := j.RecordMessage(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	fctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := j.Flush(fctx); err != nil {
		t.Fatalf("flush: %v (health %+v)", err, j.Health(ctx))
	}
	for _, m := range []store.Message{long, goodOther(2)} {
		if !messageLanded(t, c, m, 0) {
			t.Fatalf("message %.20s… not in Firestore", m.WAMessageID)
		}
	}
	if got, err := j.FindMessage(ctx, testAccount, long.WAMessageID); err != nil || got.DocID != long.DocID {
		t.Fatalf("FindMessage of the long id: %v, %v", got.DocID, err)
	}
	if h := j.Health(ctx); h.JournalDeadLetters != 0 || h.JournalBacklog != 0 {
		t.Fatalf("health %+v", h)
	}
}

// A receipt journaled behind a refused message of its account waits until
// that message is dead-lettered (it might target it), then ships: nothing
// behind a refusal is lost or reordered before its target.
func TestUpdateBehindRefusedEntryShipsAfterIt(t *testing.T) {
	t.Parallel()
	c, project := fsemu.NewClient(t)
	j := open(t, fsemu.Host(t), project, filepath.Join(t.TempDir(), "journal.db"), journal.Options{
		NoInline: true, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		MaxRefusals: 2, RefusalBackoff: 300 * time.Millisecond,
	}, false, nil)
	ctx := context.Background()
	target := msg(3)
	for _, m := range []store.Message{target, poison(1)} {
		if _, err := j.RecordMessage(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.UpdateReceipt(ctx, store.Receipt{AccountID: testAccount, WAMessageIDs: []string{target.WAMessageID}, Status: "read"}); err != nil {
		t.Fatal(err)
	}
	if _, err := j.RecordMessage(ctx, goodOther(4)); err != nil {
		t.Fatal(err)
	}
	fctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := j.Flush(fctx); err != nil {
		t.Fatalf("flush: %v (health %+v)", err, j.Health(ctx))
	}
	snap, err := c.Collection("threads").Doc(target.ThreadID).Collection("messages").Doc(target.DocID).Get(ctx)
	if err != nil || snap.Data()["status"] != "read" {
		t.Fatalf("receipt behind a refused entry: %v, %v", snap.Data()["status"], err)
	}
	if !messageLanded(t, c, goodOther(4), 0) {
		t.Fatal("the other account's message did not land")
	}
	if h := j.Health(ctx); h.JournalDeadLetters != 1 || h.JournalBacklog != 0 {
		t.Fatalf("health %+v", h)
	}
}
