// Package wasock closes whatsmeow clients without racing whatsmeow's own
// writers.
package wasock

import (
	"context"
	"errors"
	"time"

	"go.mau.fi/whatsmeow"
	waBinary "go.mau.fi/whatsmeow/binary"
)

// DrainBound is how long Close waits for a write in flight. A write only
// takes that long when the network or the server has stopped taking bytes,
// and then closing the socket is what ends it.
const DrainBound = time.Second

// Close waits, at most DrainBound, for the frame whatsmeow is writing on
// cli's socket, then disconnects it.
//
// whatsmeow writes frames from goroutines of its own (the post-login IQs,
// receipts, acks, keepalive pings), and FrameSocket.SendFrame reads the
// socket's conn without the lock FrameSocket.Close writes it under
// (docs/races.md). Every write holds the NoiseSocket's write lock from
// before it reads conn until it has written, so taking that lock once
// before closing orders every write that started earlier before the close:
// one in flight is waited for, a finished one happened before. Only a write
// that starts after this call can still meet the close; no caller can
// prevent that.
func Close(cli *whatsmeow.Client) { CloseWithin(cli, DrainBound) }

// CloseWithin is Close with its own bound on the wait.
func CloseWithin(cli *whatsmeow.Client, bound time.Duration) {
	drained := make(chan struct{})
	go func() {
		_ = drainWrites(cli)
		close(drained)
	}()
	t := time.NewTimer(bound)
	defer t.Stop()
	select {
	case <-drained:
	case <-t.C:
		// The stuck write ends when Disconnect closes the socket; the
		// drain then takes the lock, writes nothing and returns.
	}
	cli.Disconnect()
}

// Detached reports whether cli holds no socket: never connected, closed by
// Disconnect, or closed by whatsmeow itself after the server ended the
// connection (its disconnect handler lets go of the socket under the
// client's socket lock). Unlike Client.IsConnected it never reads the
// socket's conn, which the read pump's close writes without a lock.
func Detached(cli *whatsmeow.Client) bool {
	return errors.Is(drainWrites(cli), whatsmeow.ErrNotConnected)
}

// drainWrites takes the socket's write lock and sends nothing: a send with
// an already-cancelled context locks, sees the context and returns before
// it encrypts or writes a byte.
// It returns ErrNotConnected when the client has no socket, else
// context.Canceled: either way nothing was written.
func drainWrites(cli *whatsmeow.Client) error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return cli.DangerousInternals().SendNode(ctx, waBinary.Node{Tag: "iq"})
}
