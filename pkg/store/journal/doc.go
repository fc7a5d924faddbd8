// Package journal makes the Firestore store lose nothing while Firestore is
// unreachable: every message (and every receipt, edit and revoke) is first
// committed to a local SQLite file (WAL, synchronous=FULL, 0600) under the
// data dir, and only then reported as recorded.
//
// When Firestore answers, the write is also shipped inline, so callers get
// the backend's real outcome and can read their write at once. When it does
// not (or a backlog exists), the journal switches to degraded mode: calls
// return as soon as the entry is durable and a background shipper moves the
// backlog to Firestore in batches, with exponential backoff, surviving
// restarts. Shipping is idempotent — the store's identity rules make a
// second delivery of an entry a no-op — so a crash between "committed in
// Firestore" and "marked shipped here" only costs a repeated write.
//
// Ordering: messages commute (one document per id, thread summaries only
// move forward), so they ship in any order; receipts, edits and revokes are
// shipped strictly after every earlier entry, so that they find their target.
//
// Reads go to Firestore, except FindMessage, which falls back to the
// journal's not-yet-shipped messages.
package journal
