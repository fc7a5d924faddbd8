package journal_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/pkg/fsclient"
	"github.com/wactl/wactl/pkg/store"
	fsstore "github.com/wactl/wactl/pkg/store/firestore"
	"github.com/wactl/wactl/pkg/store/journal"
	"github.com/wactl/wactl/pkg/store/storetest"
)

// openJournaled opens the journaled Firestore store: the journal file in a
// temp dir, the backend on the shared emulator. The reuse key is
// "project|journal path".
func openJournaled(t *testing.T, env storetest.Env) (store.Store, string) {
	t.Helper()
	project, path := fsemu.ProjectID(t), filepath.Join(t.TempDir(), "journal.db")
	if env.Reuse != "" {
		project, path, _ = strings.Cut(env.Reuse, "|")
	}
	s := open(t, fsemu.Host(t), project, path, journal.Options{Now: env.Now, CallTimeout: time.Minute}, env.StrongDedupe, env.Now)
	return s, project + "|" + path
}

func open(t testing.TB, host, project, path string, o journal.Options, strong bool, now func() time.Time) *journal.Store {
	t.Helper()
	b, err := fsstore.Open(context.Background(), fsstore.Options{
		Connection:   fsclient.Options{ProjectID: project, EmulatorHost: host},
		StrongDedupe: strong,
		Now:          now,
	})
	if err != nil {
		t.Fatal(err)
	}
	j, err := journal.Open(path, b, o)
	if err != nil {
		b.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

const testAccount = "account_test_00000000000000000000000000000001"

// msg builds message i by hand (no dependency on package dedupe): 50
// threads, message time base + i seconds.
func msg(i int) store.Message {
	jid := fmt.Sprintf("4071100%04d@s.whatsapp.net", i%50)
	wa := fmt.Sprintf("3EB0J%07d", i)
	return store.Message{
		AccountID: testAccount, ThreadID: testAccount + "__" + jid,
		DocID:     fmt.Sprintf("%024x", i+1),
		ClientJID: jid, ClientJIDRaw: jid, RawJID: jid, ResolvedJID: jid,
		NormalizedPhone: "+" + strings.TrimSuffix(jid, "@s.whatsapp.net"), PeerType: "user",
		SenderJID: jid, SenderName: "Peer", Direction: "inbound",
		Body: fmt.Sprintf("message %d", i), WAMessageID: wa, WAMessageIDRaw: wa,
		Status: "delivered", MessageType: "text",
		TsClient: time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second),
		Source:   "realtime", StableKeyHash: fmt.Sprintf("%08x", i), FingerprintHash: fmt.Sprintf("%08x", i),
	}
}

// landed checks that messages 0..n-1 are in Firestore exactly once each:
// n message documents, n mappings, every mapping pointing at its document.
func landed(t *testing.T, c *firestore.Client, n int) {
	t.Helper()
	ctx := context.Background()
	count := func(q firestore.Query) int64 {
		res, err := q.NewAggregationQuery().WithCount("n").Get(ctx)
		if err != nil {
			t.Fatalf("count: %v", err)
		}
		return res["n"].(interface{ GetIntegerValue() int64 }).GetIntegerValue()
	}
	if got := count(c.CollectionGroup("messages").Where("accountId", "==", testAccount)); got != int64(n) {
		t.Fatalf("%d message documents, want exactly %d", got, n)
	}
	if got := count(c.Collection("message_ids").Query); got != int64(n) {
		t.Fatalf("%d message_ids mappings, want exactly %d", got, n)
	}
	docs, err := c.Collection("message_ids").Documents(ctx).GetAll()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, d := range docs {
		var i int
		wa, _ := d.Data()["waMessageId"].(string)
		if _, err := fmt.Sscanf(wa, "3EB0J%07d", &i); err != nil || i < 0 || i >= n || seen[wa] {
			t.Fatalf("mapping %s: unexpected or repeated id %q", d.Ref.ID, wa)
		}
		seen[wa] = true
		if d.Data()["docId"] != msg(i).DocID {
			t.Fatalf("mapping of %s points at %v, want %s", wa, d.Data()["docId"], msg(i).DocID)
		}
	}
}
