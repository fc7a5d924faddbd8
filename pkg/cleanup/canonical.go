package cleanup

import (
	"slices"
	"strings"

	"github.com/wactl/wactl/pkg/audit"
)

// SortCanonicalFirst orders a group's documents best copy first: not
// already marked, then the app's queued document of an echo pair the audit
// joined (Preferred: the app holds its id), then earliest ingestedAt
// (unknown last), then most complete, then document id — a total order, so
// every run agrees.
func SortCanonicalFirst(docs []audit.Doc) {
	slices.SortFunc(docs, func(a, b audit.Doc) int {
		if a.IsDuplicate != b.IsDuplicate {
			if !a.IsDuplicate {
				return -1
			}
			return 1
		}
		if a.Preferred != b.Preferred {
			if a.Preferred {
				return -1
			}
			return 1
		}
		az, bz := a.IngestedAt.IsZero(), b.IngestedAt.IsZero()
		switch {
		case az != bz:
			if bz {
				return -1
			}
			return 1
		case !a.IngestedAt.Equal(b.IngestedAt):
			return a.IngestedAt.Compare(b.IngestedAt)
		}
		if a.Completeness != b.Completeness {
			return b.Completeness - a.Completeness
		}
		if c := strings.Compare(a.ID, b.ID); c != 0 {
			return c
		}
		return strings.Compare(a.ThreadID, b.ThreadID)
	})
}
