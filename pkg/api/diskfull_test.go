package api

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/wactl/wactl/pkg/daemon"
	"github.com/wactl/wactl/pkg/store/sqlite"
)

// addFails is the fake WhatsApp side with an add-account that fails.
type addFails struct {
	*fakeWA
	err error
}

func (f addFails) AddAccount(context.Context, AddAccount) error { return f.err }

// TestAddAccountErrorsCarryNoServerPath is issue 16 item 10: a failed
// add-account answered "add-account failed: create account dir: mkdir
// /var/lib/wactl/sessions/...: no space left on device". The answer names
// the cause (disk full) and never a server path; the log keeps the detail.
func TestAddAccountErrorsCarryNoServerPath(t *testing.T) {
	for _, tc := range []struct {
		err     error
		code    int
		errCode string
		mustSay string
	}{
		{fmt.Errorf("create account dir: mkdir /var/lib/wactl/sessions/account_prod_x: %w", syscall.ENOSPC),
			503, "disk_full", "disk"},
		{errors.New("write metadata of account_prod_x: open /var/lib/wactl/sessions/account_prod_x/account.json: permission denied"),
			500, "internal", "add-account failed"},
	} {
		e := newEnv(t, func(o *Options, d *Deps) { d.WhatsApp = addFails{fakeWA: d.WhatsApp.(*fakeWA), err: tc.err} })
		r := e.do("POST", "/api/whatsapp/add-account", e.admin, map[string]any{"name": "Sales", "phone": "+40722000111"})
		if r.code != tc.code || r.str("error") != tc.errCode || !strings.Contains(r.str("message"), tc.mustSay) {
			t.Errorf("%v: answered %d %s", tc.err, r.code, r.raw)
		}
		if strings.Contains(string(r.raw), "/var/lib") {
			t.Errorf("answer carries a server path: %s", r.raw)
		}
	}
}

// TestSendOnAFullDiskSaysDiskFull: on a real full file system the embedded
// store cannot write the send; the answer says disk full instead of "the
// message store cannot be read".
func TestSendOnAFullDiskSaysDiskFull(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=4m,mode=0700"); err != nil {
		t.Skipf("SKIP (needs mount privilege for a real full file system): %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	clk := newClock()
	st, err := sqlite.Open(context.Background(), sqlite.Options{Dir: filepath.Join(dir, "data"), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	e := newEnvWithStore(t, st, clk)
	e.wa.addAccount(sendAcc, "+40722000111", daemon.StateConnected)
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			break
		}
	}
	f.Close()
	body := map[string]any{"accountId": sendAcc, "to": "+40 722 999 888", "message": "hello", "threadId": sendThread}
	r := e.do("POST", peerPath, e.svc, body, "X-Request-ID", reqID(77))
	// The fake WhatsApp accepts the send before the store fails to record
	// it: record_failed, and its message says why.
	if r.str("error") != "record_failed" || !strings.Contains(r.str("message"), "disk is full") || strings.Contains(r.str("message"), "cannot be read") {
		t.Fatalf("send on a full disk: %d %s", r.code, r.raw)
	}
	if strings.Contains(string(r.raw), dir) {
		t.Fatalf("answer carries a server path: %s", r.raw)
	}
}
