package cleanup

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/pkg/audit"
	"github.com/wactl/wactl/pkg/audit/audittest"
	"github.com/wactl/wactl/pkg/fsclient"
)

const (
	childEnv     = "WACTL_CLEANUP_CHILD"
	childProject = "WACTL_CLEANUP_CHILD_PROJECT"
	// childDB, when set, makes the child clean the embedded store at
	// this path instead of Firestore.
	childDB = "WACTL_CLEANUP_CHILD_DB"
)

func manySel() audit.Selection {
	return audit.Selection{Window: 48 * time.Hour, Key: audit.KeyAuto, Now: now}
}

// runChild is the process the kill test kills: it applies a cleanup and,
// once the first batch is committed, says so and waits to be killed.
func runChild() int {
	ctx := context.Background()
	var b audit.Backend
	if path := os.Getenv(childDB); path != "" {
		e, err := audit.OpenEmbedded(ctx, path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		b = e
	} else {
		c, err := fsclient.New(ctx, fsclient.Options{ProjectID: os.Getenv(childProject), EmulatorHost: os.Getenv("FIRESTORE_EMULATOR_HOST")})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		b = audit.NewFirestore(c)
	}
	_, err := Run(ctx, b, Options{Selection: manySel(), Apply: true, Progress: func(done, total int) {
		fmt.Printf("committed %d/%d\n", done, total)
		select {} // killed here, between batches
	}})
	fmt.Fprintln(os.Stderr, "child finished without being killed:", err)
	return 1
}

func TestFirestoreKilledApplyResumes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	data := audittest.Many(now, 300)
	ref, _ := fsemu.NewClient(t)
	c, project := fsemu.NewClient(t)
	for _, cl := range []*firestoreClient{{ref}, {c}} {
		if err := audittest.WriteFirestore(ctx, cl.c, data); err != nil {
			t.Fatal(err)
		}
	}
	before := snapshot(t, c)
	// The reference: one uninterrupted run.
	r, err := Run(ctx, audit.NewFirestore(ref), Options{Selection: manySel(), Apply: true})
	if err != nil || r.Marked != 300 || r.ThreadsUpdated != 1 {
		t.Fatalf("reference run: %+v %v", r, err)
	}
	want := snapshot(t, ref)

	killChildAfter(t, "committed 249/300", childProject+"="+project)

	mid := snapshot(t, c)
	if mid.countMarked() != 249 {
		t.Fatalf("after the kill %d documents are marked, want the first batch (249)", mid.countMarked())
	}
	b := audit.NewFirestore(c)
	runs, err := Runs(ctx, b)
	if err != nil || len(runs) != 1 || runs[0].Status != "interrupted" || runs[0].Marks != 249 {
		t.Fatalf("runs after the kill: %+v, %v", runs, err)
	}
	killed := runs[0].ID
	if mid.threads[audittest.ThreadA]["lastMessageAtMs"] == want.threads[audittest.ThreadA]["lastMessageAtMs"] {
		t.Fatal("thread recomputed before the kill: the test no longer covers the resume of thread summaries")
	}
	r2, err := Run(ctx, b, Options{Selection: manySel(), Apply: true})
	if err != nil || r2.Marked != 51 || r2.DuplicatesAlreadyMarked != 249 || r2.ThreadsUpdated != 1 {
		t.Fatalf("rerun: %+v %v", r2, err)
	}
	// The rerun names the run it finished, whose marks stay that run's.
	if len(r2.InterruptedRuns) != 1 || r2.InterruptedRuns[0] != killed {
		t.Fatalf("rerun names interrupted runs %v, want [%s]", r2.InterruptedRuns, killed)
	}
	got := snapshot(t, c)
	wm, gm := want.marks(), got.marks()
	for p, v := range wm {
		if gm[p] != v {
			t.Fatalf("%s: %v after kill and rerun, %v after one run", p, gm[p], v)
		}
	}
	for _, k := range []string{"lastMessageAt", "lastMessageAtMs", "lastMessageText"} {
		if got.threads[audittest.ThreadA][k] != want.threads[audittest.ThreadA][k] {
			t.Fatalf("thread %s: %v vs %v", k, got.threads[audittest.ThreadA][k], want.threads[audittest.ThreadA][k])
		}
	}
	// Undoing the rerun leaves the killed run's marks; undoing the killed
	// run too restores every field exactly.
	u2, err := Undo(ctx, b, r2.RunID)
	if err != nil || u2.Unmarked != 51 {
		t.Fatalf("undo of the rerun: %+v, %v", u2, err)
	}
	if n := snapshot(t, c).countMarked(); n != 249 {
		t.Fatalf("%d marked after undoing the rerun, want the killed run's 249", n)
	}
	u1, err := Undo(ctx, b, killed)
	if err != nil || u1.Unmarked != 249 || u1.Skipped != 0 {
		t.Fatalf("undo of the interrupted run: %+v, %v", u1, err)
	}
	equalState(t, "after undoing both runs", before, snapshot(t, c))
	runs, err = Runs(ctx, b)
	if err != nil || len(runs) != 2 || runs[0].Status != "undone" || runs[1].Status != "undone" {
		t.Fatalf("runs after both undos: %+v, %v", runs, err)
	}
}

// killChildAfter runs this test binary as a cleanup child (env selects its
// store), waits for it to report the first committed batch (want) and kills
// it with SIGKILL, so no cleanup code runs.
func killChildAfter(t *testing.T, want string, env string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", env)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, want) {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("child said %q, %v", line, err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
}
