package daemon

import (
	"sync"

	"go.mau.fi/whatsmeow"

	"github.com/wactl/wactl/internal/wasock"
)

// clientCloser serialises the disconnects wactl makes of an account's
// clients (stop, recycle, keepalive failure, login after pairing).
//
// whatsmeow's socket code is not safe for two closes at once: NoiseSocket
// writes FrameSocket.OnDisconnect without the socket's lock while a close
// in another goroutine reads it, and FrameSocket.SendFrame reads its conn
// without the lock while Close writes it (the two races `go test -race`
// reported when step-down cancelled the clients' context and then called
// Disconnect: the read pump's close and Disconnect's close ran at once).
// So wactl closes a client one way only — Client.Disconnect, one at a
// time per account, never by cancelling the context of a live connection
// first — and cancels a connection's context only after it is closed.
// Not even a connect in flight: its context is already the read pump's,
// which would then close a socket the handshake is still setting up. A
// step-down aborts the connect's dial instead (wasock.WithDialAbort).
// The close itself is wasock.Close: it first waits (bounded) for a frame
// whatsmeow is writing from one of its own goroutines (receipts, the
// post-login IQs), whose write reads the socket's conn unlocked. A close
// the server starts while whatsmeow sends a keepalive ping is whatsmeow's
// alone; docs/races.md has its reproduction.
type clientCloser struct{ mu sync.Mutex }

func (c *clientCloser) close(cli *whatsmeow.Client) {
	c.mu.Lock()
	defer c.mu.Unlock()
	setLive(cli, false)
	wasock.Close(cli)
}

// disconnect closes cli, serialised with every other disconnect of a.
func (a *account) disconnect(cli *whatsmeow.Client) {
	a.closer.close(cli)
}
