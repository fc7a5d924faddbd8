//go:build race

package serve_test

// raceEnabled: the race detector slows the daemon several times over, so
// tests that measure what it still answers under a flood run only in the
// plain run (make test runs both).
const raceEnabled = true
