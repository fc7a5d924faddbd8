// Package lock decides which wactl process may drive the WhatsApp accounts:
// exactly one process is ACTIVE (connected to WhatsApp), every other one is
// PASSIVE and waits. Two live connections for one device make WhatsApp kick
// one of them ("stream replaced") and risk a logout, so the lease is the one
// thing that decides who may connect.
//
// Two backends share the Lock interface:
//
//   - Firestore (several hosts): the lease document the old Node service
//     used (wa_metrics/longrun/locks/wa_connection by default). Its fields
//     holderInstanceId, leaseUntil (epoch ms number), acquiredAt, updatedAt
//     and previousHolder stay valid, so the old service and wactl can run side
//     by side during a cutover with at most one of them active (wactl's
//     holderInstanceId is "wactl:<id>", see below). wactl adds a
//     fencing epoch (one more at every change of holder), the holder's
//     host, pid, start time, data dir and a per-process session token, and
//     holderBinding, a hash tying those to holderInstanceId and leaseUntil
//     (binding.go): the old service's merge updates leave it stale, so its
//     leases are never mistaken for a wactl process's.
//   - Embedded (one host): flock(2) on the data dir itself (which cannot be
//     unlinked by accident while it holds files) and on <data dir>/wactl.lock
//     (for older wactl binaries), released by the kernel when the process
//     dies; holder details in wactl.lock.json (0600). The holder checks every
//     poll that both paths still name what it locked and re-takes the lock
//     when the file was deleted.
//
// # Firestore protocol
//
// A read followed by a conditional write (Create when the document is absent,
// else Update with a LastUpdateTime precondition equal to the snapshot's
// update time). Transactions are not used: against the emulator, 8 contenders
// with transactions starved one process for 80 s and failed 16–20 of 200
// acquisitions, while conditional writes never failed.
//
// Expiry is judged with Firestore's clock only: a holder writes
// leaseUntil = ReadTime + TTL, where ReadTime is the server time of the read
// that preceded the write, and a contender treats the lease as expired when
// the ReadTime of a later read reaches leaseUntil. Local wall clocks are never
// compared across hosts (a host whose clock is 30 s off neither steals a live
// lease nor keeps a lost one).
//
// # Self-fencing
//
// The holder measures its own deadline with a monotonic clock that keeps
// counting through system suspend (CLOCK_BOOTTIME): it stays ACTIVE only until
// send + TTL − SafetyMargin, where send is when the last CONFIRMED renewal's
// read was sent. Because that read's ReadTime is not earlier than the send,
// the holder has stepped down SafetyMargin before any other process can see
// the lease expire — even when Firestore is unreachable or the process was
// paused. A renewal that finds a newer epoch (or another holder) steps down at
// once. OnPassive must disconnect every WhatsApp client before it returns;
// the margin is its time budget.
//
// # Identity and restarts
//
// The instance id comes from configuration and is never random. A process
// whose instance id holds an unexpired lease reclaims it at once (with a new
// epoch) when it is provably the same host and data dir: it holds the flock
// on the data dir, which the kernel released when the previous process died,
// and the lease records the same host and data dir. A lease with the same
// instance id but another host is reported as a configuration conflict and is
// never taken while it is live. A lease without a valid binding — written
// or merged over by the Node service — is never reclaimed early, even with
// the same instance id, because nothing proves that process is gone, and
// its leftover wactl fields name nobody. The Node service treats a lease
// whose holderInstanceId equals its own INSTANCE_ID as its own, so wactl
// writes "wactl:<instance id>" there (HolderID, identity.go), which no Node
// id equals: with one id on one host neither takes the other's live lease.
// A lease an earlier wactl wrote under its bare id (valid binding) is still
// recognised as that instance's. While ACTIVE the holder also listens to the
// document (watch.go) and steps down as soon as it stops being its own.
//
// # Epochs
//
// epoch grows by one at every change of holder (a restart of the same
// instance counts as a change; renewals do not). When the previous epoch is
// unknown — no document, a Node format document without an epoch, or an
// unreadable field — the new epoch is Firestore's read
// time in milliseconds, which is larger than any epoch reached by +1 steps, so
// writers fenced by the epoch never see it go backwards. Every create or
// takeover is also raised above the high-water mark in <doc>_epoch and
// raises it in the same conditional batch (epoch.go), so epochs stay unique
// when the lease document is deleted and two reads share a read time.
// Epochs are only ever compared, never interpreted.
//
// # Unreadable lease documents
//
// A document whose holderInstanceId or leaseUntil is missing or of the wrong
// type is reported as lockStatus "unknown" and logged. Its expiry cannot be
// read from it, so it is taken over only when Firestore's clock proves that
// nobody has written it for GarbageGrace (default max(TTL, 90 s)): every live
// holder, Node or wactl, rewrites the document well within that time. A
// holder that finds its own lease turned unreadable steps down at once.
//
// # Cost of the defaults
//
// TTL 20 s, renew every 5 s, safety margin 5 s, passive retry 5 s: takeover
// within about 20 s and rides out Firestore blips of up to 10 s. The holder
// does one read and one write per renewal: 86,400 / 5 ≈ 17,280 writes and as
// many reads a day, close to Firestore's free tier (20,000 writes/day), plus
// as many listener reads (its own renewals, delivered to its listener); each
// passive process adds up to 17,280 reads a day. The old service's profile
// (LegacyTiming: 90/30/15 s) costs about 2,900 writes a day but takes up to
// ~105 s to take over.
package lock
