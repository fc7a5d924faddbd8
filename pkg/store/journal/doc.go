// Package journal makes the Firestore store lose nothing while Firestore is
// unreachable: a message (and every receipt, edit and revoke) is reported
// as recorded only once it is durable in Firestore or committed to a local
// SQLite file (WAL, synchronous=FULL, 0600) under the data dir.
//
// While Firestore answers, a live message is written to Firestore directly
// (one commit, no local fsync: the message's latency is Firestore's), and
// callers get the backend's real outcome. A direct write that fails is
// committed to the journal then, under the same write token, so a commit
// whose answer was lost is recognised when the entry ships. Receipts,
// edits, revokes and history are committed to the journal first and
// shipped inline. When Firestore does not answer (or a backlog exists), the
// journal switches to degraded mode: calls return as soon as the entry is
// durable and a background shipper moves the backlog to Firestore in
// batches, with exponential backoff, surviving restarts. Shipping is
// idempotent — the store's identity rules make a second delivery of an
// entry a no-op — so a crash between "committed in Firestore" and "marked
// shipped here" only costs a repeated write.
//
// Ordering: messages commute (one document per id, thread summaries only
// move forward), so they ship in any order; receipts, edits and revokes are
// shipped strictly after every earlier entry, so that they find their target.
//
// Reads go to Firestore, except FindMessage, which falls back to the
// journal's not-yet-shipped messages.
package journal
