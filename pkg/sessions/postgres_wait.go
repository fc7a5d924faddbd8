package sessions

import (
	"context"
	"database/sql/driver"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// defaultPGOutageWait bounds how long a device-store call waits for
// PostgreSQL to come back.
const defaultPGOutageWait = 5 * time.Minute

// waitConnector makes the pool wait out a PostgreSQL outage instead of
// failing at once. whatsmeow acknowledges a message it failed to decrypt
// (and sends a retry receipt), so a device store that fails while a
// message is being decrypted loses the message; one that waits leaves it
// unacknowledged, and WhatsApp delivers it again, or the decryption goes
// on when PostgreSQL is back. A new connection is retried until the
// caller's context ends or wait has passed; errors PostgreSQL itself sends
// (a wrong password, a missing database) are returned at once, except
// "starting up" and "shutting down". A statement already running when the
// server dies still fails.
type waitConnector struct {
	base    driver.Connector
	wait    time.Duration
	log     *slog.Logger
	waiting atomic.Int32
}

func (w *waitConnector) Driver() driver.Driver { return w.base.Driver() }

func (w *waitConnector) Connect(ctx context.Context) (driver.Conn, error) {
	deadline := time.Now().Add(w.wait)
	pause := 100 * time.Millisecond
	logged := false
	for {
		c, err := w.base.Connect(ctx)
		if err == nil {
			if logged {
				w.log.Info("PostgreSQL device store reachable again")
			}
			return c, nil
		}
		if !transientConnectError(err) || ctx.Err() != nil || time.Now().Add(pause).After(deadline) {
			return nil, err
		}
		if !logged && w.waiting.Add(1) == 1 {
			// One line per outage, not one per waiting call.
			w.log.Error("PostgreSQL device store unreachable; device-store calls wait for it (messages stay unacknowledged)", "err", err, "wait", w.wait)
			logged = true
			defer w.waiting.Add(-1)
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(pause):
		}
		if pause < time.Second {
			pause *= 2
		}
	}
}

func transientConnectError(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "57P03", "57P01", "57P02", "53300": // cannot_connect_now, admin/crash shutdown, too_many_connections
			return true
		}
		return false
	}
	return true // network: refused, no socket, timeout, reset
}
