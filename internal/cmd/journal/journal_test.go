package journal

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wactl/wactl/internal/cmdutil"
	"github.com/wactl/wactl/internal/iostreams"
	"github.com/wactl/wactl/internal/wiring"
	"github.com/wactl/wactl/pkg/config"
	"github.com/wactl/wactl/pkg/fsclient"
	"github.com/wactl/wactl/pkg/store"
	fsstore "github.com/wactl/wactl/pkg/store/firestore"
	"github.com/wactl/wactl/pkg/store/journal"
)

const acc = "account_test_00000000000000000000000000000001"

// deadLetterJournal leaves a journal with one dead letter in dir: a
// receipt the store refuses for good (its status is invalid), which is
// refused before Firestore is contacted, so nothing needs to listen.
func deadLetterJournal(t *testing.T, dir string) {
	t.Helper()
	b, err := fsstore.Open(context.Background(), fsstore.Options{Connection: fsclient.Options{ProjectID: "p", EmulatorHost: "127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	j, err := journal.Open(filepath.Join(dir, wiring.JournalFile), b, journal.Options{CallTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.UpdateReceipt(context.Background(), store.Receipt{AccountID: acc, WAMessageIDs: []string{"3EB0X"}, Status: "bogus"}); err == nil {
		t.Fatal("an invalid receipt was accepted")
	}
	if n, _ := j.Dead(context.Background()); n != 1 {
		t.Fatalf("%d dead letters, want 1", n)
	}
	j.Close()
}

func opts(dir string, backend string) (*Options, *iostreams.IOStreams) {
	ios, _, _, _ := iostreams.Test()
	return &Options{IO: ios, Load: func() (*config.Loaded, error) {
		l := &config.Loaded{}
		l.Config.DataDir = dir
		l.Config.Store.Backend = backend
		return l, nil
	}}, ios
}

func TestDeadLettersListAndRetry(t *testing.T) {
	dir := t.TempDir()
	deadLetterJournal(t, dir)
	ctx := context.Background()

	o, _ := opts(dir, "firestore")
	ios, _, out, _ := iostreams.Test()
	o.IO = ios
	err := RunDeadLetters(ctx, o)
	var ee *cmdutil.ExitError
	if !errors.As(err, &ee) || ee.Code != cmdutil.ExitProblems {
		t.Fatalf("dead-letters with one dead letter: %v, want exit 3", err)
	}
	var got struct {
		DeadLetters []journal.DeadLetter `json:"deadLetters"`
		Count       int                  `json:"count"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil || got.Count != 1 || got.DeadLetters[0].Kind != "receipt" ||
		got.DeadLetters[0].Code != "malformed" || !strings.Contains(got.DeadLetters[0].Error, "bogus") {
		t.Fatalf("dead-letters JSON %s: %v", out, err)
	}
	seq := got.DeadLetters[0].Seq

	ios, _, out, _ = iostreams.Test()
	o.IO, o.Seqs = ios, []int64{seq + 100}
	if err := RunRetry(ctx, o); !errors.Is(err, journal.ErrNoDeadLetter) {
		t.Fatalf("retry of an unknown id: %v", err)
	}
	o.Seqs, o.All = nil, true
	if err := RunRetry(ctx, o); err != nil || !strings.Contains(out.String(), `"queued": 1`) {
		t.Fatalf("retry --all: %v %s", err, out)
	}
	ios, _, out, _ = iostreams.Test()
	o.IO = ios
	if err := RunDeadLetters(ctx, o); err != nil || !strings.Contains(out.String(), `"count": 0`) {
		t.Fatalf("after the retry: %v %s", err, out)
	}

	if err := RunDeadLetters(ctx, func() *Options { o, _ := opts(dir, "embedded"); return o }()); err == nil ||
		!strings.Contains(err.Error(), "only the Firestore store has a journal") {
		t.Fatalf("embedded store: %v", err)
	}
	if err := RunDeadLetters(ctx, func() *Options { o, _ := opts(t.TempDir(), "firestore"); return o }()); err == nil ||
		!strings.Contains(err.Error(), "no journal at") {
		t.Fatalf("no journal: %v", err)
	}
}
