package audit_test

import (
	"context"
	"testing"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/internal/legacynode"
	"github.com/wactl/wactl/pkg/audit"
	"github.com/wactl/wactl/pkg/audit/audittest"
	"github.com/wactl/wactl/pkg/dedupe"
)

func writeRaw(t *testing.T, c *firestore.Client, thread string, docs map[string]map[string]any) {
	t.Helper()
	for id, f := range docs {
		if _, err := c.Collection("threads").Doc(thread).Collection("messages").Doc(id).Set(context.Background(), f); err != nil {
			t.Fatal(err)
		}
	}
}

// Documents with neither tsClient nor tsClientMs are placed by tsServer,
// then ingestedAt, then createdAt, as the old audit did, and every document
// read is either grouped or counted under a reason.
func TestFirestoreTimeFallbacks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, _ := fsemu.NewClient(t)
	ts := now.Add(-time.Hour).Truncate(time.Second)
	base := func(extra map[string]any) map[string]any {
		f := map[string]any{"accountId": audittest.Account, "direction": "inbound", "body": "salut", "messageType": "text", "providerMessageId": "3EB0FALL"}
		for k, v := range extra {
			f[k] = v
		}
		return f
	}
	writeRaw(t, c, audittest.ThreadA, map[string]map[string]any{
		"with-tsclient": base(map[string]any{"tsClient": ts, "tsClientMs": ts.UnixMilli()}),
		"ts-server":     base(map[string]any{"tsServer": ts.Add(time.Second), "createdAt": ts.Add(2 * time.Second)}),
		// The old helper wrote tsClient:null when Baileys gave no time.
		"created-only":         base(map[string]any{"tsClient": nil, "createdAt": ts.Add(3 * time.Second)}),
		"garbage-then-created": base(map[string]any{"tsClient": "soon", "createdAt": ts.Add(4 * time.Second)}),
		"garbage-only":         base(map[string]any{"tsClient": "soon", "providerMessageId": "3EB0OTHER"}),
		"created-old":          base(map[string]any{"tsClient": "soon", "createdAt": now.Add(-72 * time.Hour), "providerMessageId": "3EB0OLD"}),
	})
	r, err := audit.Run(ctx, audit.NewFirestore(c), audit.Options{Selection: seedSel(audit.KeyAuto)})
	if err != nil {
		t.Fatal(err)
	}
	if r.TotalDocs != 4 || r.UniqueFingerprints != 1 || r.DuplicatesCount != 3 || r.ParseFailures != 1 {
		t.Errorf("totalDocs=%d unique=%d duplicates=%d parseFailures=%d, want 4/1/3/1", r.TotalDocs, r.UniqueFingerprints, r.DuplicatesCount, r.ParseFailures)
	}
	for k, n := range map[string]int{"timestamp": 1, "tsServer": 1, "createdAt": 2} {
		if r.TsClientShapes[k] != n {
			t.Errorf("tsClientShapes[%s]=%d want %d (%v)", k, r.TsClientShapes[k], n, r.TsClientShapes)
		}
	}
	for k, n := range map[string]int{audit.SkipNoTime: 1, audit.SkipOutsideWindow: 1} {
		if r.Skipped[k] != n {
			t.Errorf("skipped[%s]=%d want %d (%v)", k, r.Skipped[k], n, r.Skipped)
		}
	}
	skipped := 0
	for _, n := range r.Skipped {
		skipped += n
	}
	if r.Scanned != r.TotalDocs+skipped {
		t.Errorf("scanned %d != totalDocs %d + skipped %d (%v)", r.Scanned, r.TotalDocs, skipped, r.Skipped)
	}
	// A limit counts what it cuts.
	sel := seedSel(audit.KeyAuto)
	sel.Limit = 2
	r, err = audit.Run(ctx, audit.NewFirestore(c), audit.Options{Selection: sel})
	if err != nil {
		t.Fatal(err)
	}
	if r.TotalDocs != 2 || r.Skipped[audit.SkipOverLimit] == 0 {
		t.Errorf("limit 2: totalDocs=%d skipped=%v", r.TotalDocs, r.Skipped)
	}
}

// One message written by wactl before the fingerprint fix (schemaVersion 2,
// the unhashed form with the peer as sender), by the old service and by
// wactl after the fix groups as one under the fingerprint key.
func TestFirestoreFingerprintBothForms(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, _ := fsemu.NewClient(t)
	ts := now.Add(-time.Hour).Truncate(time.Second)
	jid := audittest.ThreadA[len(audittest.Account)+2:]
	body := "Bună ziua"
	ms := ts.UnixMilli()
	wactl := func(fp string) map[string]any {
		return map[string]any{"accountId": audittest.Account, "clientJid": jid, "senderJid": jid, "direction": "inbound",
			"body": body, "messageType": "text", "tsClient": ts, "tsClientMs": ms, "schemaVersion": int64(2), "fingerprintHash": fp}
	}
	writeRaw(t, c, audittest.ThreadA, map[string]map[string]any{
		"wactl-before-fix": wactl(dedupe.PreFixFingerprintHash(jid, "inbound", jid, ms, "text", body)),
		"wactl-after-fix":  wactl(dedupe.StrongFingerprintHash(jid, "inbound", jid, ms, "text", body)),
		// Another message of the same chat, before the fix: its own group.
		"wactl-other": wactl(dedupe.PreFixFingerprintHash(jid, "inbound", jid, ms, "text", "altceva")),
	})
	// The old service records the same message under another id.
	old := &legacynode.Messages{C: c, Now: func() time.Time { return now }}
	p, err := old.Persist(ctx, audittest.Account, legacynode.WAMessage{ID: "3EB0OLDWRITER", RemoteJID: jid, Timestamp: ts.Unix(), Kind: "conversation", Text: body}, "realtime")
	if err != nil || p.Skipped || p.ThreadID != audittest.ThreadA {
		t.Fatalf("old writer: %+v %v", p, err)
	}
	// "wactl-other" is pre-fix too but its stored hash is of another body:
	// it must not be taken for this message.
	writeRaw(t, c, audittest.ThreadA, map[string]map[string]any{"wactl-other": func() map[string]any {
		f := wactl(dedupe.PreFixFingerprintHash(jid, "inbound", jid, ms, "text", "altceva"))
		f["body"] = "altceva"
		return f
	}()})
	r, err := audit.Run(ctx, audit.NewFirestore(c), audit.Options{Selection: seedSel(audit.KeyFingerprint)})
	if err != nil {
		t.Fatal(err)
	}
	if r.TotalDocs != 4 || r.UniqueFingerprints != 2 || r.DuplicatesCount != 2 {
		t.Fatalf("fingerprint key: totalDocs=%d unique=%d duplicates=%d, want 4/2/2: %+v", r.TotalDocs, r.UniqueFingerprints, r.DuplicatesCount, r.Groups)
	}
	if len(r.Groups) != 1 || r.Groups[0].Size != 3 {
		t.Fatalf("groups %+v", r.Groups)
	}
}

// The old service's commonest duplicate: the app's queued document (id =
// the proxy's requestId) and the document its WhatsApp echo got under the
// hashed id. Auto pairs them; the same text typed on the phone, a send
// that never left, and an echo outside the window stay alone.
func TestFirestoreRequestEchoPairs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c, _ := fsemu.NewClient(t)
	jid := audittest.ThreadA[len(audittest.Account)+2:]
	clock := now.Add(-3 * time.Hour)
	old := &legacynode.Messages{C: c, Now: func() time.Time { return clock }}
	send := func(client, text string, echoAfter time.Duration, waID string) string {
		t.Helper()
		q := legacynode.Send{AccountID: audittest.Account, ThreadID: audittest.ThreadA, ToJID: jid, UID: "uid1", ClientMessageID: client, Text: text}
		id, err := old.ProxyQueue(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		clock = clock.Add(20 * time.Second)
		if waID == "" {
			return id
		}
		if err := old.OutboxSent(ctx, id, waID); err != nil {
			t.Fatal(err)
		}
		clock = clock.Add(echoAfter)
		if _, err := old.Persist(ctx, audittest.Account, legacynode.WAMessage{ID: waID, RemoteJID: jid, FromMe: true,
			Timestamp: clock.Unix(), Kind: "conversation", Text: "  " + text + " "}, "realtime"); err != nil {
			t.Fatal(err)
		}
		clock = clock.Add(time.Minute)
		return id
	}
	phone := func(waID, text string) {
		t.Helper()
		if _, err := old.Persist(ctx, audittest.Account, legacynode.WAMessage{ID: waID, RemoteJID: jid, FromMe: true,
			Timestamp: clock.Unix(), Kind: "conversation", Text: text}, "realtime"); err != nil {
			t.Fatal(err)
		}
		clock = clock.Add(time.Minute)
	}
	if _, err := old.Persist(ctx, audittest.Account, legacynode.WAMessage{ID: "3EB0IN1", RemoteJID: jid, Timestamp: clock.Unix(), Kind: "conversation", Text: "ok?"}, "realtime"); err != nil {
		t.Fatal(err)
	}
	r1 := send("c1", "Bună ziua, confirm comanda", time.Second, "3EB0SEND1")
	r2 := send("c2", "ok", 0, "3EB0SEND2")
	phone("3EB0PHONE1", "ok") // same text from the phone, a minute later
	send("c3", "ok", 0, "")   // queued, never sent
	phone("3EB0PHONE2", "ok")
	send("c4", "late", 15*time.Minute, "3EB0SEND4") // echo after the window
	// 1 inbound + 2×2 (sent + echo) + 1 phone + 1 queued + 1 phone + 2 late = 10
	r, err := audit.Run(ctx, audit.NewFirestore(c), audit.Options{Selection: seedSel(audit.KeyAuto)})
	if err != nil {
		t.Fatal(err)
	}
	if r.TotalDocs != 10 || r.DuplicatesCount != 2 || r.KeyStrategyCounts[audit.KindRequestEcho] != 2 {
		t.Fatalf("auto: totalDocs=%d duplicates=%d counts=%v groups=%+v", r.TotalDocs, r.DuplicatesCount, r.KeyStrategyCounts, r.Groups)
	}
	paired := map[string]bool{}
	for _, g := range r.Groups {
		for _, id := range g.SampleDocIDs {
			paired[id] = true
		}
	}
	if !paired[r1] || !paired[r2] {
		t.Errorf("requestId documents %s, %s not in the groups %+v", r1, r2, r.Groups)
	}
	// A wider window takes the late echo too; a negative one turns it off.
	sel := seedSel(audit.KeyAuto)
	sel.EchoWindow = 20 * time.Minute
	if r, err = audit.Run(ctx, audit.NewFirestore(c), audit.Options{Selection: sel}); err != nil || r.DuplicatesCount != 3 {
		t.Fatalf("20m window: %+v %v", r, err)
	}
	sel.EchoWindow = -1
	if r, err = audit.Run(ctx, audit.NewFirestore(c), audit.Options{Selection: sel}); err != nil || r.DuplicatesCount != 0 {
		t.Fatalf("pairing off: %+v %v", r, err)
	}
}
