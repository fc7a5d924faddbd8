package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/wactl/wactl/pkg/store"
)

func testAccounts(t *testing.T, open Opener) {
	s, clock, _ := openFresh(t, open, false)
	a1, a2 := accountFor(1), accountFor(2)
	created := clock.Now()
	boot := created.Add(-time.Hour)
	full := store.Account{
		ID: a1, Name: "Shop", PhoneE164: "+40700000001", Status: "qr_ready",
		QRCode: "data:image/png;base64,AAAA", QRUpdatedAt: created, PairingCode: "ABCD-EFGH",
		CreatedAt: created, UpdatedAt: created, RequiresQR: true, LogoutCount: 2,
		LastDisconnectReason: "stream error", LastDisconnectCode: 515, LastDisconnectedAt: created,
		LastError: "boom", LastErrorAt: created,
		Worker: store.Worker{Service: "wactl", InstanceID: "host-a", Version: "1.0", Commit: "abc", Uptime: 90 * time.Second, BootTs: boot},
		Epoch:  5,
	}
	put := func(a store.Account) error { return s.PutAccount(ctx(t), a) }
	if err := put(full); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetAccount(ctx(t), a1)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "Shop" || got.PhoneE164 != full.PhoneE164 || got.Status != "qr_ready" || got.QRCode != full.QRCode ||
		got.PairingCode != full.PairingCode || !got.RequiresQR || got.LogoutCount != 2 || got.LastDisconnectCode != 515 ||
		got.LastDisconnectReason != full.LastDisconnectReason || got.LastError != "boom" || got.Worker.InstanceID != "host-a" ||
		got.Worker.Uptime != 90*time.Second || !sameMs(got.Worker.BootTs, boot) || !sameMs(got.CreatedAt, created) ||
		!sameMs(got.QRUpdatedAt, created) || !sameMs(got.LastErrorAt, created) || got.Worker.Commit != "abc" {
		t.Fatalf("account round trip:\n got %+v\nwant %+v", got, full)
	}

	// Connected: the QR, pairing code and error are cleared; createdAt stays.
	clock.Advance(time.Minute)
	conn := got
	conn.Status, conn.QRCode, conn.PairingCode, conn.RequiresQR, conn.LastError = "connected", "", "", false, ""
	conn.WAJid, conn.LastConnectedAt, conn.UpdatedAt, conn.CreatedAt = "40700000001@s.whatsapp.net", clock.Now(), clock.Now(), time.Time{}
	if err := put(conn); err != nil {
		t.Fatal(err)
	}
	got, _ = s.GetAccount(ctx(t), a1)
	if got.Status != "connected" || got.QRCode != "" || got.PairingCode != "" || got.RequiresQR || got.LastError != "" ||
		got.WAJid != conn.WAJid || got.Name != "Shop" || !sameMs(got.CreatedAt, created) || !sameMs(got.LastConnectedAt, clock.Now()) {
		t.Fatalf("account after connect: %+v", got)
	}

	// Fencing.
	stale := conn
	stale.Epoch, stale.Status = 4, "disconnected"
	if err := put(stale); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("stale epoch: %v, want ErrFenced", err)
	}
	if got, _ = s.GetAccount(ctx(t), a1); got.Status != "connected" {
		t.Fatalf("a fenced write changed the status to %q", got.Status)
	}
	newer := conn
	newer.Epoch, newer.Status = 6, "reconnecting"
	if err := put(newer); err != nil {
		t.Fatalf("newer epoch: %v", err)
	}
	if err := put(stale); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("epoch 4 after 6: %v, want ErrFenced", err)
	}
	unfenced := newer
	unfenced.Epoch, unfenced.Status = 0, "passive"
	if err := put(unfenced); err != nil {
		t.Fatalf("epoch 0 (no fencing): %v", err)
	}

	if err := put(store.Account{ID: a2, Name: "Second", Status: "connecting", CreatedAt: clock.Now()}); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListAccounts(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Fatalf("ListAccounts: %d accounts, want 2", len(list))
	}
	names := map[string]string{}
	for _, a := range list {
		names[a.ID] = a.Status
	}
	if names[a1] != "passive" || names[a2] != "connecting" {
		t.Fatalf("ListAccounts statuses %v", names)
	}
	if _, err := s.GetAccount(ctx(t), accountFor(9)); !isNotFound(err) {
		t.Fatalf("GetAccount of a missing account: %v", err)
	}
	if err := put(store.Account{Name: "no id"}); err == nil {
		t.Fatal("PutAccount without an id was accepted")
	}
}
