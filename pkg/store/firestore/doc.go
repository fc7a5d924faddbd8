// Package firestore is the Firestore backend of store.Store: the documents the
// Flutter app reads, with the names of the legacy contract.
//
// Layout (collection/document):
//
//	accounts/{accountId}                                 account registry (merge writes, lease epoch in leaseEpoch)
//	threads/{threadId}                                   thread summary
//	threads/{threadId}/messages/{docId}                  one document per WhatsApp message
//	message_ids/{accountId}__{waMessageId}               → {accountId, threadId, docId, waMessageId, updatedAt}
//	outbox/{requestId}                                   sends queued by the app's proxy
//	wa_metrics/counters/accounts/{accountId}             dedupe{wrote,skipped,strongSkipped},
//	                                                     history{wrote,skipped,lastRunAt,lastBatchCount}
//
// Identity without hot transactions: the emulator (and production under
// contention) handles contended transactions badly, so a message is written
// with one atomic WriteBatch after one batched read: Create preconditions on
// the message_ids mapping and the message document make a second writer fail
// instead of duplicating, and the thread summary is written only when the
// message is newer than the summary, under a LastUpdateTime precondition from
// the read. A failed precondition means someone else wrote in between: the
// read is repeated and the decision made again, so concurrent live and
// history writers converge on one document per message.
package firestore
