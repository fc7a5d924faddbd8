package sqlite

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/wactl/wactl/pkg/dedupe"
	"github.com/wactl/wactl/pkg/store"
	"github.com/wactl/wactl/pkg/store/storetest"
)

const childEnv = "WACTL_SQLITE_TEST_CHILD_DIR"

var durAcc = dedupe.AccountIDFromCanonical("", "+40700000003")

func durMessage(i int) store.Message {
	m := storetest.Inbound(durAcc, i%7, fmt.Sprintf("3EB0DUR%08d", i), benchBase.Add(time.Duration(i)*time.Second), fmt.Sprintf("m%d", i))
	return m
}

// TestMain lets the test binary act as a recording process that the
// kill -9 test starts and kills.
func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		os.Exit(runChild(dir))
	}
	os.Exit(m.Run())
}

// runChild records messages forever, printing each id once RecordMessage
// has returned nil (the promise: durable).
func runChild(dir string) int {
	s, err := Open(context.Background(), Options{Dir: dir})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; ; i += 4 {
				m := durMessage(i)
				if _, err := s.RecordMessage(context.Background(), m); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(1)
				}
				mu.Lock()
				fmt.Fprintln(out, m.WAMessageID)
				out.Flush()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return 0
}

func TestKill9KeepsEveryAcknowledgedMessage(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[string]bool{}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		acked[sc.Text()] = true
		if len(acked) == 400 {
			break
		}
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no shutdown code runs
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if len(acked) < 400 {
		t.Fatalf("child acknowledged only %d messages", len(acked))
	}

	s, err := Open(t.Context(), Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for id := range acked {
		if _, err := s.FindMessage(t.Context(), durAcc, id); err != nil {
			t.Fatalf("acknowledged message %s lost after kill -9: %v", id, err)
		}
	}
	// Redelivery after the restart (the server resends what it saw no
	// receipt for) adds nothing for what is there and fills the rest.
	batch := make([]store.Message, 0, 1000)
	there := 0
	for i := range 1000 {
		batch = append(batch, durMessage(i))
		if _, err := s.FindMessage(t.Context(), durAcc, batch[i].WAMessageID); err == nil {
			there++
		}
	}
	r, err := s.RecordHistory(t.Context(), durAcc, batch)
	if err != nil {
		t.Fatal(err)
	}
	if r.Saved != 1000-there || r.Skipped != there {
		t.Fatalf("after restart %+v, want %d saved and %d skipped", r, 1000-there, there)
	}
	seen := map[string]bool{}
	for p := range 7 {
		ms, err := s.ListMessages(t.Context(), durMessage(p).ThreadID, store.Page{Limit: 100000})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if seen[m.WAMessageID] {
				t.Fatalf("two documents for %s", m.WAMessageID)
			}
			seen[m.WAMessageID] = true
		}
	}
	for _, m := range batch {
		if !seen[m.WAMessageID] {
			t.Fatalf("message %s missing after redelivery", m.WAMessageID)
		}
	}
	if c, _ := s.Counters(t.Context(), durAcc); c.DedupeWrote != int64(len(seen)) {
		t.Fatalf("%d documents but dedupe.wrote %d", len(seen), c.DedupeWrote)
	}
}

func TestCloseWithConcurrentWrites(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s, err := Open(t.Context(), Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := []string{}
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < 4000; i += 8 {
				m := durMessage(i)
				_, err := s.RecordMessage(t.Context(), m)
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				ok = append(ok, m.WAMessageID)
				mu.Unlock()
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait() // a write stuck after Close would hang here
	if len(ok) == 0 {
		t.Fatal("no write finished before Close: the test proved nothing")
	}
	s2, err := Open(t.Context(), Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	for _, id := range ok {
		if _, err := s2.FindMessage(t.Context(), durAcc, id); err != nil {
			t.Fatalf("message %s acknowledged before Close is missing: %v", id, err)
		}
	}
	if _, err := s.RecordMessage(t.Context(), durMessage(0)); !errors.Is(err, ErrClosed) {
		t.Fatalf("write after Close: %v, want ErrClosed", err)
	}
}
