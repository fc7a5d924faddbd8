package fsemu

import (
	"context"
	"strings"
)

// pickPort chooses the emulator's port (a variable for tests).
var pickPort = freePort

// startRetrying starts an emulator, again on a newly picked port when the
// JVM could not bind the one picked: freePort's port is free only when it
// is picked, and with test binaries running side by side (go test ./...)
// another process or an outgoing connection can take it during the
// seconds the JVM needs to bind it.
func startRetrying(ctx context.Context) (*Emulator, error) {
	for attempt := 1; ; attempt++ {
		e, err := start(ctx)
		if !bindFailed(err) || attempt == 3 {
			return e, err
		}
	}
}

func bindFailed(err error) bool {
	return err != nil && strings.Contains(err.Error(), "Address already in use")
}
