// Package cleanup marks duplicate chat messages found by package audit:
// per group it keeps one canonical document and marks the others
// isDuplicate:true, duplicateOf, duplicateMarkedAt, cleanupRunId. It never
// deletes a document.
//
// A run is safe to interrupt and to repeat. Marks are committed in batches
// together with their journal entries, the canonical choice prefers
// documents that are not marked (so a rerun picks the same canonical copy
// as the interrupted run did), and already-marked documents are counted,
// not rewritten: rerunning finishes the job and a second apply marks 0.
// The marks a run made, and only those, are undone with Undo.
//
// A run plans from one scan. Messages the daemon records meanwhile are not
// in the plan, so they are never marked; marks update only the four mark
// fields, so concurrent receipts on the same documents are kept; a mark is
// written only while its document and canonical copy are as planned, and
// documents that changed are planned again (audit.ErrChangedSincePlan);
// thread summaries are written conditionally on what was read, never in a
// transaction the daemon would wait for (see audit.Marker). A killed run
// keeps its marks as its own: Runs lists it as interrupted, and the rerun
// names it.
package cleanup
