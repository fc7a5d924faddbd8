package api

import (
	"context"
	"testing"
	"time"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/pkg/dedupe"
	"github.com/wactl/wactl/pkg/store"
	"github.com/wactl/wactl/pkg/store/firestore"
)

// storeWA is fakeWA plus the account documents pkg/daemon writes: its
// status writer puts the live state after AddAccount (no DeletedAt, like
// account.document), and Delete puts status deleted with deletedAt.
type storeWA struct {
	*fakeWA
	st  store.Store
	now func() time.Time
}

func (s *storeWA) AddAccount(ctx context.Context, req AddAccount) error {
	if err := s.fakeWA.AddAccount(ctx, req); err != nil {
		return err
	}
	return s.st.PutAccount(ctx, store.Account{ID: req.AccountID, Name: req.Name, PhoneE164: req.Phone,
		Status: "needs_qr", RequiresQR: true, UpdatedAt: s.now()})
}

func (s *storeWA) Delete(ctx context.Context, id string) error {
	if err := s.fakeWA.Delete(ctx, id); err != nil {
		return err
	}
	a, err := s.st.GetAccount(ctx, id)
	if err != nil {
		return err
	}
	a.Status, a.DeletedAt = "deleted", s.now()
	return s.st.PutAccount(ctx, a)
}

func withStoreWA(st store.Store) envOpt {
	return func(o *Options, d *Deps) { d.WhatsApp = &storeWA{fakeWA: d.WhatsApp.(*fakeWA), st: st, now: d.Now} }
}

// Issue 22 item 2: delete, then re-add of the same phone, then a failover
// (a second instance's API over the same store, holding no account in
// memory): the account is listed and counts towards the account limit.
func testReAddListedAfterFailover(t *testing.T, st store.Store, clk *clock) {
	a := newEnvWithStore(t, st, clk, withStoreWA(st))
	phone := "+40722000777"
	id := dedupe.AccountIDFromCanonical("prod", phone)
	add := func() {
		t.Helper()
		r := a.do("POST", "/api/whatsapp/add-account", a.admin, map[string]any{"name": "Shop", "phone": phone})
		if r.code != 200 {
			t.Fatalf("add-account: %d %s", r.code, r.raw)
		}
	}
	add()
	if r := a.do("DELETE", "/api/whatsapp/accounts/"+id, a.admin, nil); r.code != 200 {
		t.Fatalf("delete: %d %s", r.code, r.raw)
	}
	// The daemon's status writer may land the account's last status just
	// after the deletion: it stays deleted.
	ctx := context.Background()
	if err := st.PutAccount(ctx, store.Account{ID: id, Name: "Shop", PhoneE164: phone, Status: "disconnected", UpdatedAt: clk.Now()}); err != nil {
		t.Fatal(err)
	}
	if got, err := st.GetAccount(ctx, id); err != nil || got.Status != "deleted" || got.DeletedAt.IsZero() {
		t.Fatalf("a late status write undeleted the account: %+v %v", got, err)
	}
	if r := a.do("GET", "/api/whatsapp/accounts", a.admin, nil); accountsOf(t, r)[id] != nil {
		t.Fatalf("deleted account listed: %s", r.raw)
	}
	clk.Add(5 * time.Second) // the user adds the phone again
	add()
	got, err := st.GetAccount(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !got.DeletedAt.IsZero() || got.Status == "deleted" {
		t.Errorf("re-added account document still deleted: status %q deletedAt %v", got.Status, got.DeletedAt)
	}

	// The other instance: PASSIVE first, then ACTIVE after the failover.
	b := newEnvWithStore(t, st, clk, func(o *Options, d *Deps) { o.MaxAccounts = 1; d.InstanceID = "inst-b" })
	b.wa.setActive(false)
	for _, mode := range []string{"passive", "active"} {
		b.wa.setActive(mode == "active")
		r := b.do("GET", "/api/whatsapp/accounts", b.admin, nil)
		acc, ok := accountsOf(t, r)[id]
		if r.code != 200 || r.str("waMode") != mode || !ok {
			t.Fatalf("%s instance after the failover: re-added account not listed: %d %s", mode, r.code, r.raw)
		}
		if acc["status"] != "needs_qr" || acc["phone"] != phone {
			t.Fatalf("%s instance lists %v", mode, acc)
		}
	}
	r := b.do("POST", "/api/whatsapp/add-account", b.admin, map[string]any{"name": "Other", "phone": "+40722000888"})
	if r.code != 429 || r.body["currentAccounts"] != 1.0 {
		t.Fatalf("the re-added account is not counted in the limit: %d %s", r.code, r.raw)
	}
}

func TestReAddListedAfterFailoverEmbedded(t *testing.T) {
	e := newEnv(t)
	testReAddListedAfterFailover(t, e.st, e.clk)
}

func TestReAddListedAfterFailoverFirestore(t *testing.T) {
	client, _ := fsemu.NewClient(t)
	clk := newClock()
	st, err := firestore.Open(context.Background(), firestore.Options{Client: client, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	testReAddListedAfterFailover(t, st, clk)
}
