package pair

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store"

	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/wasock"
	"github.com/wactl/wactl/pkg/sessions"
)

const accountID = "account_prod_0123456789abcdef0123456789abcdef"

func newAccountStore(t *testing.T, phone string) *sessions.Store {
	t.Helper()
	st, err := sessions.Open(filepath.Join(t.TempDir(), "sessions"), sessions.Options{InstanceID: "pair-test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Create(sessions.NewAccount{ID: accountID, Phone: phone}); err != nil {
		t.Fatal(err)
	}
	return st
}

func pairAccountWithScan(t *testing.T, srv *wafake.Server, st *sessions.Store, phone string, force bool) (Result, error) {
	t.Helper()
	log := newEventLog()
	scanned := scanFirst(t, srv, log, phone)
	var clients []*whatsmeow.Client
	res, err := PairAccount(context.Background(), st, accountID, AccountOptions{
		Options: Options{Events: log.emit, ConnectedTimeout: 10 * time.Second},
		Force:   force,
		NewClient: func(d *store.Device) *whatsmeow.Client {
			c := srv.NewClient(d, nil)
			clients = append(clients, c)
			return c
		},
	})
	if err == nil || errors.Is(err, ErrRefused) {
		<-scanned
	}
	for _, c := range clients {
		if c.IsConnected() {
			t.Error("PairAccount left a client connected")
		}
	}
	return res, err
}

func TestPairAccountRecordsAndRestores(t *testing.T) {
	t.Parallel()
	srv := wafake.Start(t, fastOpts)
	st := newAccountStore(t, "+40712345678")

	res, err := pairAccountWithScan(t, srv, st, "40712345678", false)
	if err != nil {
		t.Fatal(err)
	}
	acct, _ := st.Get(accountID)
	if acct.PairedJID != res.JID.String() || acct.PairedAt == nil {
		t.Fatalf("account.json after pairing: %+v", acct)
	}

	// A new open of the account restores the session and logs in without a QR.
	dev, err := st.OpenDevice(context.Background(), accountID, sessions.DeviceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !dev.Paired() || *dev.Store.ID != res.JID {
		t.Fatalf("restored device %v, want %v", dev.Store.ID, res.JID)
	}
	cli := srv.NewClient(dev.Store, nil)
	connected := make(chan struct{}, 1)
	cli.AddEventHandler(func(evt any) {
		if cli.IsLoggedIn() {
			select {
			case connected <- struct{}{}:
			default:
			}
		}
	})
	if err := cli.Connect(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-connected:
	case <-time.After(10 * time.Second):
		t.Fatal("restored session did not log in")
	}
	wasock.Close(cli)

	// While this process holds the account, PairAccount is refused.
	_, err = PairAccount(context.Background(), st, accountID, AccountOptions{NewClient: func(d *store.Device) *whatsmeow.Client { return srv.NewClient(d, nil) }})
	var inUse *sessions.InUseError
	if !errors.As(err, &inUse) || !strings.Contains(err.Error(), "pair through the daemon") {
		t.Fatalf("PairAccount while held = %v", err)
	}
	dev.Close()

	// Already paired: refused without Force.
	_, err = PairAccount(context.Background(), st, accountID, AccountOptions{NewClient: func(d *store.Device) *whatsmeow.Client { return srv.NewClient(d, nil) }})
	if !errors.Is(err, ErrAlreadyPaired) {
		t.Fatalf("PairAccount on paired account = %v", err)
	}

	// Force: unlink, then pair a new device.
	res2, err := pairAccountWithScan(t, srv, st, "40712345678", true)
	if err != nil {
		t.Fatalf("forced re-pair: %v", err)
	}
	if res2.JID == res.JID {
		t.Fatal("forced re-pair kept the old device")
	}
	inv, err := st.Inventory(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if a := inv.Accounts[0]; a.Store != sessions.StorePaired || a.DeviceJID != res2.JID.String() || a.Account.PairedJID != res2.JID.String() {
		t.Fatalf("inventory after re-pair: %+v", a)
	}
}

func TestPairAccountRefusesOtherPhone(t *testing.T) {
	t.Parallel()
	srv := wafake.Start(t, fastOpts)
	st := newAccountStore(t, "+40712345678")
	res, err := pairAccountWithScan(t, srv, st, "40700000000", false)
	if !errors.Is(err, ErrRefused) || res.Phone != "+40700000000" {
		t.Fatalf("PairAccount by another phone = %+v, %v", res, err)
	}
	inv, _ := st.Inventory(context.Background())
	if a := inv.Accounts[0]; a.Store == sessions.StorePaired || a.Account.PairedJID != "" || a.InUse {
		t.Fatalf("refused pairing left state: %+v", a)
	}
}

func TestPairAccountCancelledLeavesNothingHalfWritten(t *testing.T) {
	t.Parallel()
	srv := wafake.Start(t, fastOpts)
	st := newAccountStore(t, "+40712345678")
	before, _ := st.Get(accountID)
	log := newEventLog()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-log.codes
		cancel()
	}()
	res, err := PairAccount(ctx, st, accountID, AccountOptions{
		Options:   Options{Events: log.emit},
		NewClient: func(d *store.Device) *whatsmeow.Client { return srv.NewClient(d, nil) },
	})
	if !errors.Is(err, ErrCancelled) || res.Outcome != OutcomeCancelled {
		t.Fatalf("PairAccount = %+v, %v", res, err)
	}
	after, err := st.Get(accountID)
	if err != nil || *after != *before {
		t.Fatalf("account.json changed: %+v -> %+v (%v)", before, after, err)
	}
	inv, err := st.Inventory(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if a := inv.Accounts[0]; a.Store != sessions.StoreUnpaired || a.InUse || len(inv.Problems) != 0 {
		t.Fatalf("after cancel: %+v, problems %+v", a, inv.Problems)
	}
}
