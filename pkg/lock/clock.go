package lock

import (
	"time"

	"golang.org/x/sys/unix"
)

// Clock is injected so tests can skew the wall clock or make the monotonic
// clock jump (a paused process) without waiting.
type Clock interface {
	// Now is the wall clock; the lock only stores it as information
	// (holderStartedAt), never compares it with a lease.
	Now() time.Time
	// Mono is a monotonic reading used for the holder's own deadlines.
	Mono() time.Duration
	// After fires after d has elapsed.
	After(d time.Duration) <-chan time.Time
}

// SystemClock uses CLOCK_BOOTTIME for Mono: unlike Go's monotonic clock
// (CLOCK_MONOTONIC) it keeps counting while the machine is suspended, and a
// suspended holder must find its deadline passed when it wakes up.
type SystemClock struct{}

func (SystemClock) Now() time.Time { return time.Now() }

func (SystemClock) Mono() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		// Not reachable on Linux ≥ 2.6.39; fall back to the runtime's
		// monotonic clock rather than to the wall clock.
		return time.Since(processStart)
	}
	return time.Duration(ts.Nano())
}

func (SystemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

var processStart = time.Now()
