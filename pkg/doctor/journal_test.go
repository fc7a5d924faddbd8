package doctor

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wactl/wactl/pkg/fsclient"
	"github.com/wactl/wactl/pkg/store"
	fsstore "github.com/wactl/wactl/pkg/store/firestore"
	"github.com/wactl/wactl/pkg/store/journal"
)

func TestJournalDeadLettersCheck(t *testing.T) {
	env := testEnv(t, nil)
	env.Config.Store.Backend = "firestore"
	ctx := context.Background()
	if r := checkJournalDeadLetters(ctx, env); r.Status != OK {
		t.Fatalf("no journal: %+v", r)
	}
	// A receipt the store refuses for good (invalid status) is refused
	// before Firestore is contacted: nothing needs to listen.
	b, err := fsstore.Open(ctx, fsstore.Options{Connection: fsclient.Options{ProjectID: "p", EmulatorHost: "127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	j, err := journal.Open(filepath.Join(env.Config.DataDir, journalFile), b, journal.Options{CallTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if r := checkJournalDeadLetters(ctx, env); r.Status != OK {
		t.Fatalf("empty journal: %+v", r)
	}
	_ = j.UpdateReceipt(ctx, store.Receipt{AccountID: "account_x", WAMessageIDs: []string{"3EB0X"}, Status: "bogus"})
	r := checkJournalDeadLetters(ctx, env)
	if r.Status != Warn || !strings.Contains(r.Summary, "1 journal entries refused") || len(r.Fixes) != 1 ||
		r.Fixes[0].Commands[0] != "wactl journal dead-letters" || !strings.HasPrefix(r.Fixes[0].Commands[1], "wactl journal retry --all") {
		t.Fatalf("one dead letter: %+v", r)
	}
	// Retry on the file with the journal closed, as `wactl journal retry`
	// does: an open journal's shipper could refuse the entry again at once.
	j.Close()
	adm, err := journal.OpenAdmin(filepath.Join(env.Config.DataDir, journalFile))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := adm.Retry(ctx, nil); err != nil {
		t.Fatal(err)
	}
	adm.Close()
	// Retried with the daemon gone, the receipt waits in the queue (it
	// comes back on the next start); meanwhile there is no dead letter.
	if r := checkJournalDeadLetters(ctx, env); r.Status != OK {
		t.Fatalf("after retry: %+v", r)
	}
	env.Config.Store.Backend = "embedded"
	if r := checkJournalDeadLetters(ctx, env); r.Status != Skip {
		t.Fatalf("embedded: %+v", r)
	}
}
