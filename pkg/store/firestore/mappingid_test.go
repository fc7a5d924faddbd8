package firestore_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/pkg/dedupe"
	"github.com/wactl/wactl/pkg/store"
	"github.com/wactl/wactl/pkg/store/firestore"
	"github.com/wactl/wactl/pkg/store/sqlite"
	"github.com/wactl/wactl/pkg/store/storetest"
)

const idAccount = "account_test_0123456789abcdef0123456789abcdef"

// WhatsApp ids that differ only where the old mapping id replaced '/' by
// '_', and one too long for a raw Firestore id, are distinct messages on
// both stores: each is recorded, found by its id, and none hides another.
func TestMappingIDsAreInjective(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	long := "3EB0" + strings.Repeat("A", 1596) // 1,600 bytes
	ids := []string{"3EB0A/1", "3EB0A_1", "3EB0A//1", "3EB0A__1", long, "sha256~" + strings.Repeat("0", 64)}
	open := map[string]func(t *testing.T) store.Store{
		"firestore": func(t *testing.T) store.Store { s, _ := openEmu(t, storetest.Env{}); return s },
		"embedded": func(t *testing.T) store.Store {
			s, err := sqlite.Open(context.Background(), sqlite.Options{Path: filepath.Join(t.TempDir(), "wactl.db")})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
	}
	for name, op := range open {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := op(t)
			ctx := context.Background()
			for i, id := range ids {
				m := storetest.Inbound(idAccount, i, id, at.Add(time.Duration(i)*time.Second), "body of "+id[:min(len(id), 12)])
				o, err := s.RecordMessage(ctx, m)
				if err != nil || o != store.Wrote {
					t.Fatalf("RecordMessage(%.40q) = %v, %v; want wrote", id, o, err)
				}
			}
			for i, id := range ids {
				got, err := s.FindMessage(ctx, idAccount, id)
				if err != nil {
					t.Fatalf("FindMessage(%.40q): %v", id, err)
				}
				if got.DocID != dedupe.MessageDocID(idAccount, id) || got.WAMessageID != id {
					t.Fatalf("FindMessage(%.40q) found %s (%.40q), want message %d", id, got.DocID, got.WAMessageID, i)
				}
			}
		})
	}
}

// A mapping the old service wrote (message_ids/<accountId>__<raw id>) for
// an app send is read: the echo of that send with an id of unusual
// characters is recognised, not written as a second document, and
// FindMessage resolves it.
func TestOldServiceMappingsStillRead(t *testing.T) {
	t.Parallel()
	project := fsemu.ProjectID(t)
	s, _ := openEmu(t, storetest.Env{Reuse: project})
	c := s.(*firestore.Store).Client()
	ctx := context.Background()
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	for _, wa := range []string{"3EB0C431D5A2B7F8E9", "3EB0-LEG_1.x:é"} {
		t.Run(wa, func(t *testing.T) {
			m := storetest.Inbound(idAccount, 7, wa, at, "sent from the app "+wa)
			requestID := strings.Repeat(dedupe.MessageDocID(idAccount, wa)[:16], 4)
			// What the old service left: the send's document under its
			// request id, and the mapping of its echo's id to it.
			if _, err := c.Collection("threads").Doc(m.ThreadID).Collection("messages").Doc(requestID).Set(ctx, map[string]any{
				"accountId": idAccount, "waMessageId": wa, "body": m.Body, "direction": "outbound", "tsClient": at,
			}); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Collection("message_ids").Doc(idAccount+"__"+wa).Set(ctx, map[string]any{
				"accountId": idAccount, "threadId": m.ThreadID, "docId": requestID, "waMessageId": wa, "updatedAt": at,
			}); err != nil {
				t.Fatal(err)
			}
			got, err := s.FindMessage(ctx, idAccount, wa)
			if err != nil || got.DocID != requestID {
				t.Fatalf("FindMessage through the old mapping: %+v, %v", got.DocID, err)
			}
			if o, err := s.RecordMessage(ctx, m); err != nil || o == store.Wrote {
				t.Fatalf("echo of an old send recorded as %v, %v; want it recognised", o, err)
			}
			docs, err := c.Collection("threads").Doc(m.ThreadID).Collection("messages").Where("waMessageId", "==", wa).Documents(ctx).GetAll()
			if err != nil || len(docs) != 1 {
				t.Fatalf("%d documents for %s, want 1 (%v)", len(docs), wa, err)
			}
		})
	}
}
