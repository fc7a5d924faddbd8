package sessions

import (
	"errors"
	"testing"
	"time"

	"github.com/wactl/wactl/internal/pgtest"
)

// A PostgreSQL outage is a store outage: wactl's own calls fail within the
// timeout, Probe reports it (so /health degrades), whatsmeow's state writes
// wait for the database instead of failing (so the message being decrypted
// is not acknowledged), nothing written before is lost, and afterwards the
// process takes back the account locks its broken connection lost before
// another process can take them.
func TestPostgresOutageFailsFastAndRecovers(t *testing.T) {
	ctx := contextBackground()
	c := pgtest.Start(t)
	dsn := c.NewDatabase(t)
	a := newPGStoreWait(t, dsn, "host-a", time.Minute)
	b := newPGStore(t, dsn, "host-b")
	mustCreate(t, a, testID)
	d, err := a.OpenDevice(ctx, testID, DeviceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	jid := pairFake(t, a, d, "40712345678")

	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := a.Probe(); err == nil {
		t.Fatal("Probe passed with PostgreSQL down")
	}
	if _, err := a.MarkPaired(testID, jid.String()); err == nil {
		t.Fatal("metadata write succeeded with PostgreSQL down")
	}
	if el := time.Since(start); el > 20*time.Second {
		t.Fatalf("wactl's calls during the outage took %s; they must fail within the timeout", el)
	}
	// whatsmeow's own state write waits for PostgreSQL, then succeeds.
	wrote := make(chan error, 1)
	go func() { wrote <- d.Store.Identities.PutIdentity(ctx, "40700000000.0:1", [32]byte{1}) }()
	select {
	case err := <-wrote:
		t.Fatalf("whatsmeow state write returned during the outage: %v", err)
	case <-time.After(1500 * time.Millisecond):
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatalf("whatsmeow state write after PostgreSQL returned: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("whatsmeow state write still waiting after PostgreSQL returned")
	}
	if err := a.Probe(); err != nil {
		t.Fatalf("Probe after PostgreSQL came back: %v", err)
	}
	if _, err := b.Lock(testID); !errors.As(err, new(*InUseError)) {
		t.Fatalf("B locked A's account after the outage: %v", err)
	}
	if ok, err := d.Store.Identities.IsTrustedIdentity(ctx, "40700000000.0:1", [32]byte{1}); err != nil || !ok {
		t.Fatalf("identity written during the outage: %v %v", ok, err)
	}
	got, err := a.Get(testID)
	if err != nil || got.PairedJID != jid.String() {
		t.Fatalf("metadata after the outage: %+v %v", got, err)
	}
}
