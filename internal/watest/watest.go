// Package watest holds test helpers shared by the daemon and command tests:
// pairing accounts into a real sessions directory through the real whatsmeow
// client and the fake WhatsApp server (internal/wafake).
package watest

import (
	"context"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"

	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/wasock"
	"github.com/wactl/wactl/pkg/dedupe"
	"github.com/wactl/wactl/pkg/sessions"
)

// Account is a paired test account.
type Account struct {
	ID     string
	Phone  string    // international digits, no +
	Device types.JID // full device JID (number:device@s.whatsapp.net)
}

// Pair creates account `phone` in sess and pairs it by QR with the fake
// phone, exactly as `wactl pair` would: the session is saved on disk and
// the client disconnected, ready for a daemon to restore it.
func Pair(t testing.TB, srv *wafake.Server, sess *sessions.Store, phone string) Account {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id, err := dedupe.AccountID("prod", phone, "40")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sess.Create(sessions.NewAccount{ID: id, Name: "acct " + phone, Phone: "+" + phone}); err != nil {
		t.Fatal(err)
	}
	dev, err := sess.OpenDevice(ctx, id, sessions.DeviceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	cli := srv.NewClient(dev.Store, nil)
	defer wasock.Close(cli)
	jid := srv.PairTestClient(t, cli, phone)
	if _, err := sess.MarkPaired(id, jid.String()); err != nil {
		t.Fatal(err)
	}
	return Account{ID: id, Phone: phone, Device: jid}
}

// Eventually polls cond every 20 ms until it holds or d passes.
func Eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
