package daemon

import (
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/wactl/wactl/pkg/replica"
)

// ReplicaProblem is an account whose session copy in Firestore could not be
// used or written: refused at restore (damaged, encrypted to another key,
// another account's), a damaged pointer, or a write that keeps failing.
// Shown on /health (warnings), the dashboard and in the log.
type ReplicaProblem struct {
	AccountID  string    `json:"accountId"`
	Outcome    string    `json:"outcome"` // refused, failed, in-use, write-failed
	Reason     string    `json:"reason"`  // damaged, damaged-pointer, foreign-key, other
	Generation int64     `json:"generation,omitempty"`
	Error      string    `json:"error"`
	At         time.Time `json:"at"`
}

func replicaReason(err error) string {
	switch {
	case errors.Is(err, replica.ErrDamagedPointer):
		return "damaged-pointer"
	case errors.Is(err, replica.ErrForeignKey):
		return "foreign-key"
	case errors.Is(err, replica.ErrCorrupt):
		return "damaged"
	}
	return "other"
}

func (s *replicaSync) setProblem(id string, p *ReplicaProblem) {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	if p == nil {
		delete(s.problems, id)
		return
	}
	s.problems[id] = *p
}

// noteRestore records (or clears) what the restore did with one account.
func (s *replicaSync) noteRestore(id string, res replica.RestoreResult) {
	switch res.Outcome {
	case replica.Refused, replica.Failed, replica.InUse:
		s.setProblem(id, &ReplicaProblem{AccountID: id, Outcome: res.Outcome, Reason: replicaReason(res.Err),
			Generation: res.Generation, Error: redactPaths(errString(res.Err)), At: s.now()})
	default:
		s.setProblem(id, nil)
	}
}

// notePutFailed records a write that failed for another reason than
// fencing; a later successful write clears it.
func (s *replicaSync) notePutFailed(id string, err error) {
	s.setProblem(id, &ReplicaProblem{AccountID: id, Outcome: "write-failed", Reason: replicaReason(err),
		Error: redactPaths(errString(err)), At: s.now()})
}

func (s *replicaSync) noteWritten(id string) { s.setProblem(id, nil) }

// Problems lists the accounts with a replica problem, by account id.
func (s *replicaSync) Problems() []ReplicaProblem {
	if s == nil {
		return nil
	}
	s.pmu.Lock()
	defer s.pmu.Unlock()
	out := make([]ReplicaProblem, 0, len(s.problems))
	for _, p := range s.problems {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b ReplicaProblem) int { return strings.Compare(a.AccountID, b.AccountID) })
	return out
}

// fillReplica puts the replica problems into a status snapshot.
func (d *Daemon) fillReplica(st *Status) {
	st.Replica = d.replica.Problems()
}

// replicaWarnings are /health's lines for the replica problems: what is
// wrong with which account, and what to run.
func (s *Status) replicaWarnings() []string {
	var w []string
	for _, p := range s.Replica {
		var what string
		switch p.Reason {
		case "damaged-pointer":
			what = "its pointer document " + replica.Collection + "/" + p.AccountID + " is damaged; the ACTIVE host rewrites it at its next copy, now: wactl doctor --fix"
		case "foreign-key":
			what = "it was encrypted to another key; give every host the same sessions.replica_key_file (wactl doctor)"
		case "damaged":
			what = "it is damaged; the ACTIVE host writes a new one at the account's next change (wactl doctor)"
		default:
			what = p.Error
		}
		w = append(w, "account "+p.AccountID+": session replica "+p.Outcome+": "+what)
	}
	return w
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
