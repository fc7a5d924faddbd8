// Package dedupe computes the identifiers that make a WhatsApp message land
// in exactly one Firestore document: canonical phones and JIDs, accountId,
// threadId, the message document id, stableKey/stableKeyHash and the strong
// fingerprint. The formulas are those of the legacy contract
// (../shared/reference/legacy-contract.md, "Identifiers"): existing documents
// were written with them, so any change here would split a chat's history in
// two. Everything is pure: no I/O, no clock, no randomness.
package dedupe
