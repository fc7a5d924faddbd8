// Package wafake is a protocol-level fake WhatsApp server on loopback for tests.
//
// The unmodified whatsmeow client connects to it over a real websocket, performs
// a real Noise XX handshake against a certificate chain signed by a test root,
// pairs by QR code, logs in from a real SQLite session store, exchanges
// Signal-encrypted messages with fake peers and suffers faults on demand.
//
// It exists to test wactl's logic against the real client: pairing, restoring
// sessions, reconnecting, never running two connections for one account and
// never losing a message. It does NOT demonstrate fidelity to WhatsApp's
// production servers: it speaks only the subset of the protocol that
// whatsmeow needs for those flows, answers unknown queries generically, and
// its behaviour was derived from reading the client, not from observing the
// real service. It is test-only code; nothing in the wactl binary imports it.
//
// See docs/testing.md for what it covers and how to use it in a new test.
package wafake
