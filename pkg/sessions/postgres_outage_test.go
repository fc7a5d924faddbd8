package sessions

import (
	"errors"
	"testing"
	"time"

	"github.com/wactl/wactl/internal/pgtest"
)

// A PostgreSQL outage is a store outage: calls fail within the timeout
// (never hang), Probe reports it (so /health degrades), nothing written
// before is lost, and afterwards the process takes back the account locks
// its broken connection lost before another process can take them.
func TestPostgresOutageFailsFastAndRecovers(t *testing.T) {
	ctx := contextBackground()
	c := pgtest.Start(t)
	dsn := c.NewDatabase(t)
	a := newPGStore(t, dsn, "host-a")
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
	// whatsmeow's own state writes fail too (its caller does not ack).
	if err := d.Store.Identities.PutIdentity(ctx, "40700000000.0:1", [32]byte{1}); err == nil {
		t.Fatal("whatsmeow state write succeeded with PostgreSQL down")
	}
	if el := time.Since(start); el > 20*time.Second {
		t.Fatalf("calls during the outage took %s; they must fail within the timeout", el)
	}

	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	if err := a.Probe(); err != nil {
		t.Fatalf("Probe after PostgreSQL came back: %v", err)
	}
	if _, err := b.Lock(testID); !errors.As(err, new(*InUseError)) {
		t.Fatalf("B locked A's account after the outage: %v", err)
	}
	if err := d.Store.Identities.PutIdentity(ctx, "40700000000.0:1", [32]byte{1}); err != nil {
		t.Fatalf("whatsmeow state write after the outage: %v", err)
	}
	got, err := a.Get(testID)
	if err != nil || got.PairedJID != jid.String() {
		t.Fatalf("metadata after the outage: %+v %v", got, err)
	}
}
