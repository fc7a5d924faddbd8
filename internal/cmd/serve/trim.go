package serve

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/wactl/wactl/internal/memtrim"
)

// trimDelay is how long after the listener is up the start-up pages are
// released: long enough for package initialisation, config, store and lease
// set-up and the first health checks of a deployment to be over, so that the
// pages released are the ones start-up touched once, and short enough that
// a `wactl serve` measured a few seconds in is already at its idle size.
const trimDelay = 5 * time.Second

// trimAfterListening returns an OnListening hook that chains next and, once,
// trimDelay later, releases the executable's start-up pages (see package
// memtrim). It gives up quietly when ctx ends first.
func trimAfterListening(ctx context.Context, log *slog.Logger, next func(string)) func(string) {
	return func(addr string) {
		if next != nil {
			next(addr)
		}
		go func() {
			t := time.NewTimer(trimDelay)
			defer t.Stop()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			r, err := memtrim.ReleaseStartupPages()
			switch {
			case errors.Is(err, memtrim.ErrNotSupported):
				log.Debug("start-up memory not released", "reason", err)
			case err != nil:
				log.Debug("start-up memory partly released", "released_kb", r.Released/1024, "err", err)
			default:
				log.Debug("start-up memory released", "released_kb", r.Released/1024,
					"executable_resident_kb", r.After/1024, "paged_out", r.Mappings, "unmapped", r.Unmapped, "evicted", r.Evicted)
			}
		}()
	}
}
