package pair_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types/events"

	paircmd "github.com/wactl/wactl/internal/cmd/pair"
	"github.com/wactl/wactl/internal/cmdutil"
	"github.com/wactl/wactl/internal/iostreams"
	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/wasock"
	"github.com/wactl/wactl/pkg/config"
	"github.com/wactl/wactl/pkg/dedupe"
	"github.com/wactl/wactl/pkg/pair"
	"github.com/wactl/wactl/pkg/sessions"
)

// scanner is an io.Writer that reads the JSON event stream of
// `wactl pair --format json` as it is written and lets the fake phone scan
// each QR code: the phone sees exactly what an automation would.
type scanner struct {
	t      *testing.T
	srv    *wafake.Server
	phone  string      // who scans; "" scans nothing
	cancel func()      // when set, Ctrl-C instead of scanning
	typed  chan string // pair codes shown, for the phone to type
	events []pair.Event
	buf    strings.Builder
}

func (s *scanner) Write(p []byte) (int, error) {
	s.buf.Write(p)
	for {
		text := s.buf.String()
		i := strings.IndexByte(text, '\n')
		if i < 0 {
			return len(p), nil
		}
		s.buf.Reset()
		s.buf.WriteString(text[i+1:])
		var e pair.Event
		if err := json.Unmarshal([]byte(text[:i]), &e); err != nil {
			s.t.Errorf("not a JSON event: %q", text[:i])
			continue
		}
		s.events = append(s.events, e)
		if e.Kind == pair.KindPairCode && s.typed != nil {
			s.typed <- e.Code
		}
		if e.Kind == pair.KindQR {
			if s.cancel != nil {
				s.cancel()
			} else if s.phone != "" {
				go s.srv.Scan(context.Background(), e.Code, s.phone)
			}
		}
	}
}

type env struct {
	srv     *wafake.Server
	dataDir string
}

func newEnv(t *testing.T, o ...wafake.Options) *env {
	return &env{srv: wafake.Start(t, o...), dataDir: t.TempDir()}
}

func (e *env) run(t *testing.T, ctx context.Context, out *scanner, o paircmd.Options) (error, string) {
	ios, _, _, errOut := iostreams.Test()
	ios.Out = out
	o.IO = ios
	o.Format = "json"
	o.Load = func() (*config.Loaded, error) {
		return config.Load(config.LoadOptions{SearchPaths: []string{}, LookupEnv: func(k string) (string, bool) {
			if k == "STATE_DIRECTORY" {
				return e.dataDir, true
			}
			return "", false
		}})
	}
	addr := e.srv.Addr()
	o.ConfigureClient = func(c *whatsmeow.Client) { wafake.ConfigureClient(c, addr) }
	err := paircmd.Run(ctx, &o)
	return err, errOut.String()
}

func (e *env) sessions(t *testing.T) *sessions.Store {
	s, err := sessions.Open(filepath.Join(e.dataDir, "sessions"), sessions.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func outcome(t *testing.T, s *scanner) pair.Event {
	t.Helper()
	if len(s.events) == 0 {
		t.Fatal("no events")
	}
	last := s.events[len(s.events)-1]
	if last.Kind != pair.KindOutcome {
		t.Fatalf("last event %+v is not the outcome", last)
	}
	return last
}

func TestPairThenRestoreWithoutQR(t *testing.T) {
	e := newEnv(t)
	phone := "40733000001"
	sc := &scanner{t: t, srv: e.srv, phone: phone}
	err, stderr := e.run(t, context.Background(), sc, paircmd.Options{Phone: "+" + phone, Name: "Shop"})
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if got := outcome(t, sc); got.Outcome != pair.OutcomePaired || got.Phone != "+"+phone {
		t.Fatalf("outcome %+v", got)
	}
	id, _ := dedupe.AccountID("prod", phone, "40")
	sess := e.sessions(t)
	acct, err := sess.Get(id)
	if err != nil || acct.PairedJID == "" || acct.Name != "Shop" {
		t.Fatalf("account.json %+v %v", acct, err)
	}
	// A new client restores the session from disk and connects, no QR.
	dev, err := sess.OpenDevice(context.Background(), id, sessions.DeviceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !dev.Paired() {
		t.Fatal("device not saved")
	}
	cli := e.srv.NewClient(dev.Store, nil)
	connected := make(chan struct{}, 1)
	cli.AddEventHandler(func(evt any) {
		if _, ok := evt.(*events.Connected); ok {
			connected <- struct{}{}
		}
	})
	if err := cli.Connect(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-connected:
	case <-time.After(10 * time.Second):
		t.Fatal("restored session did not connect")
	}
	wasock.Close(cli)
	dev.Close()

	// Pairing it again is refused without --force.
	sc = &scanner{t: t, srv: e.srv}
	err, _ = e.run(t, context.Background(), sc, paircmd.Options{Phone: "+" + phone})
	if err == nil || !strings.Contains(err.Error(), "already paired") {
		t.Fatalf("second pairing: %v", err)
	}
}

func TestPairRefusedPhoneKeepsNothing(t *testing.T) {
	e := newEnv(t)
	sc := &scanner{t: t, srv: e.srv, phone: "40733999999"}
	err, _ := e.run(t, context.Background(), sc, paircmd.Options{Phone: "+40733000002"})
	var ee *cmdutil.ExitError
	if !errors.As(err, &ee) || ee.Code != cmdutil.ExitFailure {
		t.Fatalf("want exit 1, got %v", err)
	}
	if got := outcome(t, sc); got.Outcome != pair.OutcomeRefused {
		t.Fatalf("outcome %+v", got)
	}
	assertNoAccounts(t, e)
}

func TestPairExpires(t *testing.T) {
	e := newEnv(t, wafake.Options{QRRefs: 2, PairTimeout: 300 * time.Millisecond})
	sc := &scanner{t: t, srv: e.srv}
	err, _ := e.run(t, context.Background(), sc, paircmd.Options{Phone: "+40733000003"})
	if err == nil {
		t.Fatal("expired pairing succeeded")
	}
	if got := outcome(t, sc); got.Outcome != pair.OutcomeExpired {
		t.Fatalf("outcome %+v", got)
	}
	assertNoAccounts(t, e)
}

func TestPairInterruptedLeavesNothing(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	sc := &scanner{t: t, srv: e.srv, cancel: cancel}
	err, _ := e.run(t, ctx, sc, paircmd.Options{Phone: "+40733000004"})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("want cancellation, got %v", err)
	}
	assertNoAccounts(t, e)
}

func assertNoAccounts(t *testing.T, e *env) {
	t.Helper()
	inv, err := e.sessions(t).Inventory(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Accounts) != 0 {
		t.Fatalf("accounts left behind: %+v", inv.Accounts)
	}
	entries, _ := os.ReadDir(filepath.Join(e.dataDir, "sessions"))
	for _, en := range entries {
		if en.Name() != "removed" {
			t.Fatalf("left behind in sessions: %s", en.Name())
		}
	}
}

func TestFlagErrors(t *testing.T) {
	e := newEnv(t)
	for _, o := range []paircmd.Options{
		{},                           // neither phone nor account
		{Phone: "12"},                // not a phone
		{AccountID: "nope"},          // not an account id
		{AccountID: "x", Code: true}, // code without phone
	} {
		err, _ := e.run(t, context.Background(), &scanner{t: t}, o)
		var fe *cmdutil.FlagError
		if !errors.As(err, &fe) {
			t.Errorf("%+v: want a usage error, got %v", o, err)
		}
	}
}

// TestPairWithCode: --code prints an 8-character code instead of a QR; the
// fake phone types it and the account is paired.
func TestPairWithCode(t *testing.T) {
	e := newEnv(t)
	phone := "40733000005"
	sc := &scanner{t: t, srv: e.srv, typed: make(chan string, 1)}
	go func() {
		code := <-sc.typed
		if _, err := e.srv.EnterPairCode(context.Background(), phone, code); err != nil {
			t.Errorf("typing the code: %v", err)
		}
	}()
	err, stderr := e.run(t, context.Background(), sc, paircmd.Options{Phone: "+" + phone, Code: true})
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	for _, ev := range sc.events {
		if ev.Kind == pair.KindQR {
			t.Fatal("a QR code was shown with --code")
		}
		if ev.Kind == pair.KindPairCode && len(strings.ReplaceAll(ev.Code, "-", "")) != 8 {
			t.Fatalf("pair code %q is not 8 characters", ev.Code)
		}
	}
	if got := outcome(t, sc); got.Outcome != pair.OutcomePaired {
		t.Fatalf("outcome %+v", got)
	}
}
