package api

import (
	"errors"
	"net/http"
	"strings"
	"syscall"
)

// diskFullMsg is what a caller hears when the server cannot write because
// its file system is full: the cause, not "cannot be read", and no path.
const diskFullMsg = "the server's disk is full, so nothing can be written until the operator frees space (wactl doctor); retry later"

// diskFull reports whether err comes from a full file system (ENOSPC, or
// SQLite's SQLITE_FULL), whichever layer reported it (issue 16 item 10).
func diskFull(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, syscall.ENOSPC) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "no space left on device") || strings.Contains(msg, "database or disk is full")
}

func failDiskFull(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Retry-After", "60")
	fail(w, r, http.StatusServiceUnavailable, "disk_full", diskFullMsg)
}
