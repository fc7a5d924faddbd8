package serve

import (
	"fmt"
	"sync"
	"time"

	"github.com/wactl/wactl/pkg/daemon"
)

// Opening the store can be slow once for a good reason: a schema upgrade
// of a large embedded store rebuilds its messages table (~20 s per million
// messages), and systemd kills a Type=notify service that has not said
// READY=1 within TimeoutStartSec (90 s by default) — then restarts it into
// the same upgrade, again and again. So while the store opens, wactl asks
// systemd for more time in steps, up to a cap, so that a start that really
// hangs still times out. Outside systemd the notifications are no-ops.
const (
	startExtendEvery = 10 * time.Second
	startExtendStep  = 30 * time.Second
	startExtendMax   = 30 * time.Minute
)

// extendStart sends EXTEND_TIMEOUT_USEC=step every interval until stop is
// called or max has passed since the call. stop waits for the sender to end,
// so no extension is sent after it returns.
func extendStart(n daemon.Notifier, every, step, max time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		deadline := time.NewTimer(max)
		defer deadline.Stop()
		for {
			select {
			case <-done:
				return
			case <-deadline.C:
				return
			case <-t.C:
				n.Notify(fmt.Sprintf("EXTEND_TIMEOUT_USEC=%d", step.Microseconds()))
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(done) })
		wg.Wait()
	}
}
