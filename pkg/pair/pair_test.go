package pair

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"

	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/wasock"
)

// These tests drive the real whatsmeow client against internal/wafake, a
// fake server on loopback: they test this package's logic, not fidelity to
// WhatsApp's servers.

var fastOpts = wafake.Options{PairTimeout: 10 * time.Second, CloseGrace: 100 * time.Millisecond}

// eventLog collects events and hands QR codes to the test.
type eventLog struct {
	mu     sync.Mutex
	events []Event
	codes  chan string
}

func newEventLog() *eventLog { return &eventLog{codes: make(chan string, 16)} }

func (l *eventLog) emit(e Event) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
	if e.Kind == KindQR {
		l.codes <- e.Code
	}
}

func (l *eventLog) kinds() []Kind {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Kind
	for _, e := range l.events {
		out = append(out, e.Kind)
	}
	return out
}

func (l *eventLog) last() Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.events[len(l.events)-1]
}

// scanFirst makes the fake phone scan the first QR code shown.
func scanFirst(t *testing.T, srv *wafake.Server, log *eventLog, phone string) chan error {
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		select {
		case code := <-log.codes:
			_, err := srv.Scan(ctx, code, phone)
			done <- err
		case <-ctx.Done():
			done <- ctx.Err()
		}
	}()
	return done
}

func devices(t *testing.T, c *sqlstore.Container) int {
	t.Helper()
	all, err := c.GetAllDevices(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return len(all)
}

func TestPairQRSuccess(t *testing.T) {
	t.Parallel()
	srv := wafake.Start(t, fastOpts)
	cli, container := srv.NewTestClient(t)
	log := newEventLog()
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	scanned := scanFirst(t, srv, log, "40712345678")

	res, err := Pair(context.Background(), cli, Options{
		ExpectedPhone: "+40712345678", Events: log.emit, Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatalf("Pair: %v (events %v)", err, log.kinds())
	}
	if err := <-scanned; err != nil {
		t.Fatalf("fake scan: %v", err)
	}
	if res.Outcome != OutcomePaired || res.Phone != "+40712345678" || res.JID.User != "40712345678" || res.JID.Device == 0 {
		t.Fatalf("result %+v", res)
	}
	if !cli.IsLoggedIn() {
		t.Fatal("Pair returned paired before the client logged in")
	}
	if got := strings.Join(kindStrings(log.kinds()), ","); got != "qr,scanned,outcome" {
		t.Fatalf("events = %s", got)
	}
	first := log.events[0]
	if first.Seq != 1 || !first.ExpiresAt.Equal(now.Add(60*time.Second)) || !strings.HasPrefix(first.Code, "2@") {
		t.Fatalf("first QR event %+v", first)
	}
	if out := log.last(); out.Outcome != OutcomePaired || out.JID != res.JID.String() || out.Error != "" {
		t.Fatalf("outcome event %+v", out)
	}
	saved, err := container.GetDevice(context.Background(), res.JID)
	if err != nil || saved == nil {
		t.Fatalf("device not saved: %v", err)
	}

	// A second Pair on the now paired device is refused before any network.
	wasock.Close(cli)
	log2 := newEventLog()
	res, err = Pair(context.Background(), cli, Options{Events: log2.emit})
	if !errors.Is(err, ErrAlreadyPaired) || res.Outcome != OutcomeError || !strings.Contains(err.Error(), "+40712345678") {
		t.Fatalf("Pair on paired device = %+v, %v", res, err)
	}
	if k := log2.kinds(); len(k) != 1 || k[0] != KindOutcome {
		t.Fatalf("events for refused start = %v", k)
	}

	// Unlink logs it out and deletes it: the store is empty again.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := Unlink(ctx, cli); err != nil {
		t.Fatalf("Unlink: %v", err)
	}
	if cli.Store.ID != nil || devices(t, container) != 0 {
		t.Fatalf("after Unlink: ID %v, %d devices", cli.Store.ID, devices(t, container))
	}
}

func kindStrings(ks []Kind) []string {
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = string(k)
	}
	return out
}

func TestPairRefusesWrongPhoneAndKeepsNothing(t *testing.T) {
	t.Parallel()
	srv := wafake.Start(t, fastOpts)
	cli, container := srv.NewTestClient(t)
	log := newEventLog()
	scanned := scanFirst(t, srv, log, "40799999999")

	res, err := Pair(context.Background(), cli, Options{ExpectedPhone: "+40712345678", Events: log.emit})
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("Pair = %+v, %v; want ErrRefused", res, err)
	}
	if !errors.Is(<-scanned, wafake.ErrPairRejected) {
		t.Fatal("the fake phone was not told the pairing was rejected")
	}
	if res.Outcome != OutcomeRefused || res.Phone != "+40799999999" {
		t.Fatalf("result %+v", res)
	}
	for _, want := range []string{"+40799999999", "+40712345678", "nothing was kept"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if cli.Store.ID != nil || devices(t, container) != 0 {
		t.Fatalf("refused pairing kept a device: %v", cli.Store.ID)
	}
	if cli.IsConnected() {
		t.Fatal("client still connected after a refused pairing")
	}
	if out := log.last(); out.Kind != KindOutcome || out.Outcome != OutcomeRefused || out.Phone != "+40799999999" {
		t.Fatalf("outcome event %+v", out)
	}
}

func TestPairExpires(t *testing.T) {
	t.Parallel()
	srv := wafake.Start(t, wafake.Options{PairTimeout: 300 * time.Millisecond, QRRefs: 2, CloseGrace: 50 * time.Millisecond})
	cli, container := srv.NewTestClient(t)
	log := newEventLog()
	res, err := Pair(context.Background(), cli, Options{Events: log.emit})
	if !errors.Is(err, ErrExpired) || res.Outcome != OutcomeExpired {
		t.Fatalf("Pair = %+v, %v; want expired", res, err)
	}
	if k := log.kinds(); len(k) < 2 || k[0] != KindQR || k[len(k)-1] != KindOutcome {
		t.Fatalf("events = %v", k)
	}
	if cli.IsConnected() || devices(t, container) != 0 {
		t.Fatal("expired pairing left a connection or a device")
	}
}

func TestPairCancelled(t *testing.T) {
	t.Parallel()
	srv := wafake.Start(t, fastOpts)
	cli, container := srv.NewTestClient(t)
	log := newEventLog()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-log.codes
		cancel() // the operator pressed Ctrl-C while the code was shown
	}()
	res, err := Pair(ctx, cli, Options{Events: log.emit})
	if !errors.Is(err, ErrCancelled) || !errors.Is(err, context.Canceled) || res.Outcome != OutcomeCancelled {
		t.Fatalf("Pair = %+v, %v; want cancelled", res, err)
	}
	if cli.IsConnected() || cli.Store.ID != nil || devices(t, container) != 0 {
		t.Fatal("cancelled pairing left a connection or a device")
	}
	if out := log.last(); out.Outcome != OutcomeCancelled {
		t.Fatalf("outcome event %+v", out)
	}
}

func TestPairChecksOptionsBeforeConnecting(t *testing.T) {
	t.Parallel()
	_, _, dev := wafake.TestStore(t)
	// No server: any attempt to connect would fail differently.
	cli := whatsmeow.NewClient(dev, nil)
	for _, tc := range []struct {
		opts Options
		want string
	}{
		{Options{PhoneCode: true}, "needs the account's phone"},
		{Options{ExpectedPhone: "0712345678"}, "not canonical"},
	} {
		res, err := Pair(context.Background(), cli, tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) || res.Outcome != OutcomeError {
			t.Errorf("Pair(%+v) = %+v, %v; want %q", tc.opts, res, err, tc.want)
		}
	}
	if _, err := Pair(context.Background(), nil, Options{}); err == nil {
		t.Error("nil client accepted")
	}
	jid := types.JID{User: "40712345678", Device: 3, Server: types.DefaultUserServer}
	dev.ID = &jid
	if _, err := Pair(context.Background(), cli, Options{}); !errors.Is(err, ErrAlreadyPaired) {
		t.Errorf("paired device: %v", err)
	}
}

func TestJSONEvents(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	emit, errf := JSONEvents(&buf)
	exp := time.Date(2026, 11, 27, 9, 1, 0, 0, time.UTC)
	emit(Event{Kind: KindQR, Code: "2@abc,def", Seq: 1, ExpiresAt: exp})
	emit(Event{Kind: KindOutcome, Outcome: OutcomePaired, Phone: "+40712345678", JID: "40712345678:3@s.whatsapp.net"})
	if err := errf(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines: %s", len(lines), buf.String())
	}
	if lines[0] != `{"event":"qr","code":"2@abc,def","seq":1,"expiresAt":"2026-11-27T09:01:00Z"}` {
		t.Errorf("qr line = %s", lines[0])
	}
	var out map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &out); err != nil || out["outcome"] != "paired" || out["phone"] != "+40712345678" || out["expiresAt"] != nil {
		t.Errorf("outcome line = %s (%v)", lines[1], err)
	}
	emit2, errf2 := JSONEvents(failWriter{})
	emit2(Event{Kind: KindOutcome})
	if errf2() == nil {
		t.Error("write error not reported")
	}
}
