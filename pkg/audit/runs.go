package audit

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"syscall"
	"time"
)

// ErrChangedSincePlan says some planned marks were not written because
// their document (or its canonical copy) changed after the plan — the
// daemon marked it, another run did, it was unmarked. The caller plans
// those documents again from their current state.
var ErrChangedSincePlan = errors.New("documents changed since the plan")

// ChangedError is the ErrChangedSincePlan of one Mark call.
type ChangedError struct{ N int }

func (e *ChangedError) Error() string        { return fmt.Sprintf("%d %s", e.N, ErrChangedSincePlan) }
func (e *ChangedError) Is(target error) bool { return target == ErrChangedSincePlan }

func changedSincePlan(n int) error { return &ChangedError{N: n} }

// RunRecord is one cleanup run as its journal records it.
type RunRecord struct {
	ID         string    `json:"runId"`
	Status     string    `json:"status"` // running, interrupted, done, undone
	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt,omitzero"`
	// Marks is how many documents the run's journal says it marked.
	Marks int    `json:"marks"`
	Host  string `json:"host,omitempty"`
	PID   int    `json:"pid,omitempty"`
	// HeartbeatAt is when the run last committed a batch.
	HeartbeatAt time.Time `json:"heartbeatAt,omitzero"`
}

// staleAfter is how long a run that says "running" may go without
// committing a batch before a run on another host calls it interrupted.
const staleAfter = 2 * time.Minute

// interrupted reports whether a run recorded as running is not running:
// its process on this host is gone, or (another host) it has not
// committed anything for staleAfter.
func (r *RunRecord) interrupted(now time.Time) bool {
	if r.Status != "running" {
		return false
	}
	if h, _ := os.Hostname(); r.Host != "" && r.Host == h && r.PID > 0 {
		return !processAlive(r.PID)
	}
	last := r.HeartbeatAt
	if last.IsZero() {
		last = r.StartedAt
	}
	return now.Sub(last) > staleAfter
}

func processAlive(pid int) bool {
	if pid == os.Getpid() {
		return true
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func runOwner() (string, int) {
	h, _ := os.Hostname()
	return h, os.Getpid()
}

func sortRuns(rs []RunRecord) {
	slices.SortFunc(rs, func(a, b RunRecord) int { return b.StartedAt.Compare(a.StartedAt) })
}
