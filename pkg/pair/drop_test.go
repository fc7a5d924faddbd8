package pair

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/wactl/wactl/internal/wafake"
)

// TestPairConnectionLostBeforeACode: the connection drops right after the
// handshake, before WhatsApp sends a code. whatsmeow's QR channel calls
// every server disconnect "timeout"; with no code ever shown that is not
// an expiry but a lost connection, and the operator is told so.
func TestPairConnectionLostBeforeACode(t *testing.T) {
	if raceEnabled {
		t.Skip("a close right after the handshake races inside whatsmeow (docs/races.md, 3); runs in the plain run")
	}
	srv := wafake.Start(t, fastOpts)
	cli, container := srv.NewTestClient(t)
	wafake.ConfigureClient(cli, wafake.DropAfterHandshake(t, srv.Addr()))
	log := newEventLog()
	res, err := Pair(context.Background(), cli, Options{Events: log.emit})
	if errors.Is(err, ErrExpired) || res.Outcome != OutcomeError {
		t.Fatalf("Pair = %+v, %v; want an error outcome naming the lost connection", res, err)
	}
	if !strings.Contains(err.Error(), "connection") || !strings.Contains(log.last().Error, "connection") {
		t.Fatalf("error %q / event %+v does not say the connection was lost", err, log.last())
	}
	if cli.IsConnected() || devices(t, container) != 0 {
		t.Fatal("left a connection or a device")
	}
}
