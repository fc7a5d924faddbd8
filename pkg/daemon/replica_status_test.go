package daemon

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wactl/wactl/pkg/replica"
)

// TestReplicaProblemsOnHealthAndDashboard (issue 20 gap 3): a copy refused
// at the restore is kept per account with its reason, shown as a /health
// warning naming the account and what to do, and listed on the dashboard;
// a later successful copy clears it.
func TestReplicaProblemsOnHealthAndDashboard(t *testing.T) {
	now := time.Date(2026, 12, 4, 8, 0, 0, 0, time.UTC)
	s := &replicaSync{problems: map[string]ReplicaProblem{}, now: func() time.Time { return now }}
	s.noteRestore("account_b", replica.RestoreResult{AccountID: "account_b", Outcome: replica.Refused, Generation: 4,
		Err: fmt.Errorf("wa_sessions_v2/account_b: %w (this host's key does not open it)", replica.ErrForeignKey)})
	s.noteRestore("account_a", replica.RestoreResult{AccountID: "account_a", Outcome: replica.Refused,
		Err: fmt.Errorf("%w: %w: wa_sessions_v2/account_a: generation: wrong type", replica.ErrCorrupt, replica.ErrDamagedPointer)})
	s.noteRestore("account_c", replica.RestoreResult{AccountID: "account_c", Outcome: replica.Restored})
	st := Status{Replica: s.Problems(), SessionsDirWritable: true, StoreReachable: true}
	if len(st.Replica) != 2 || st.Replica[0].AccountID != "account_a" || st.Replica[0].Reason != "damaged-pointer" ||
		st.Replica[1].Reason != "foreign-key" || st.Replica[1].Generation != 4 {
		t.Fatalf("problems: %+v", st.Replica)
	}
	w := strings.Join(st.warnings(), "\n")
	for _, want := range []string{
		"account account_a: session replica refused: its pointer document wa_sessions_v2/account_a is damaged",
		"wactl doctor --fix",
		"account account_b: session replica refused: it was encrypted to another key",
	} {
		if !strings.Contains(w, want) {
			t.Fatalf("warnings lack %q:\n%s", want, w)
		}
	}
	d := dashboard(&st, false)
	if got, _ := d["replica"].([]ReplicaProblem); len(got) != 2 || d["service"].(map[string]any)["status"] != "degraded" {
		t.Fatalf("dashboard: %v %v", d["replica"], d["service"])
	}
	s.noteWritten("account_a")
	s.notePutFailed("account_b", errors.New("deadline exceeded"))
	p := s.Problems()
	if len(p) != 1 || p[0].AccountID != "account_b" || p[0].Outcome != "write-failed" {
		t.Fatalf("after a copy of a and a failed write of b: %+v", p)
	}
}
