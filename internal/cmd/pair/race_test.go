//go:build race

package pair_test

// raceEnabled: see docs/races.md, race 1. whatsmeow's QR channel closes its
// output channel in its Disconnected handler while its code emitter may be
// sending on it; an expiry (the server ends the pairing connection) trips
// the race detector in whatsmeow's code, not in wactl's.
const raceEnabled = true
