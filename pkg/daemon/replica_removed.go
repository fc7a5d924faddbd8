package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"time"
)

// removedAt is when the operator last removed account id on this host
// (`wactl accounts remove`, the API's delete): the latest
// <sessions>/removed/<UTC time>-<id>[.N] entry; zero when none. Entries a
// restore left (…-<id>.before-restore) are not removals.
func removedAt(sessionsRoot, id string) time.Time {
	entries, err := os.ReadDir(filepath.Join(sessionsRoot, "removed"))
	if err != nil {
		return time.Time{}
	}
	var latest time.Time
	for _, e := range entries {
		stamp, rest, ok := strings.Cut(e.Name(), "-")
		if !ok || strings.Contains(rest, ".before-restore") {
			continue
		}
		name, n, _ := strings.Cut(rest, ".")
		if name != id || strings.Trim(n, "0123456789") != "" {
			continue
		}
		if t, err := time.Parse("20060102T150405Z", stamp); err == nil && t.After(latest) {
			latest = t
		}
	}
	return latest
}
