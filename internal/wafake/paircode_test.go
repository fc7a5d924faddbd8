package wafake_test

import (
	"errors"
	"strings"
	"testing"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/wactl/wactl/internal/wafake"
)

func TestPairCode(t *testing.T) {
	t.Parallel()
	srv := wafake.Start(t, fastOpts)
	cli, container := srv.NewTestClient(t)
	rec := record(cli)
	if err := cli.Connect(); err != nil {
		t.Fatal(err)
	}
	waitEvent[*events.QR](t, rec)
	ctx := ctxT(t)
	const phone = "15550000040"
	code, err := cli.PairPhone(ctx, "+1 555-000-0040", true, whatsmeow.PairClientChrome, "Chrome (Linux)")
	if err != nil {
		t.Fatal(err)
	}
	if len(code) != 9 || code[4] != '-' {
		t.Fatalf("code %q is not XXXX-XXXX", code)
	}
	// A mistyped code fails on the phone, and the user can try again.
	wrong := strings.Map(func(r rune) rune {
		if r == 'A' {
			return 'B'
		}
		return 'A'
	}, code)
	if _, err := srv.EnterPairCode(ctx, phone, wrong); !errors.Is(err, wafake.ErrWrongPairCode) {
		t.Fatalf("wrong code: err = %v, want ErrWrongPairCode", err)
	}
	jid, err := srv.EnterPairCode(ctx, phone, code)
	if err != nil {
		t.Fatal(err)
	}
	ps := waitEvent[*events.PairSuccess](t, rec)
	if ps.ID != jid {
		t.Fatalf("PairSuccess %s, want %s", ps.ID, jid)
	}
	waitEvent[*events.Connected](t, rec)
	if dev, err := container.GetDevice(ctx, jid); err != nil || dev == nil {
		t.Fatalf("device %s not saved: %v", jid, err)
	}
}

func TestEnterPairCodeWithoutRequest(t *testing.T) {
	t.Parallel()
	srv := wafake.Start(t, fastOpts)
	if _, err := srv.EnterPairCode(ctxT(t), "15550000041", "ABCD-EFGH"); !errors.Is(err, wafake.ErrNoPairCode) {
		t.Fatalf("err = %v, want ErrNoPairCode", err)
	}
}
