package firestore

import "time"

// createdAtISO is accounts.createdAt as the old service wrote it: an ISO
// string (Date#toISOString), so that the old code reading an account during
// a cutover gets a string, not a Timestamp object. Reads accept both
// (getTime). created is the caller's time; zero takes now.
func createdAtISO(created, now time.Time) string {
	if created.IsZero() {
		created = now
	}
	return isoMillis(created)
}
