package lock

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wactl/wactl/internal/fsemu"
)

// tenureSink receives finished tenures and fencing violations.
type tenureSink interface {
	tenure(tenure)
	violation(string)
}

type fileSink struct {
	mu sync.Mutex
	f  *os.File
}

// Each line is written with one write(2) on an O_APPEND file, so lines of
// several processes never interleave.
func (s *fileSink) tenure(t tenure) { s.write(fmtTenure(t)) }
func (s *fileSink) violation(m string) {
	s.write("VIOLATION " + strings.ReplaceAll(m, "\n", " ") + "\n")
}
func (s *fileSink) write(l string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _ = s.f.WriteString(l)
}

// fencedIncrement is a writer fenced by the epoch: it refuses to write over
// a newer epoch. Only holders write the counter, so a refused write or a
// lost precondition race means two holders at once.
func fencedIncrement(ctx context.Context, counter *firestore.DocumentRef, epoch int64, newRound bool) error {
	snap, err := counter.Get(ctx)
	if status.Code(err) == codes.NotFound {
		_, err = counter.Create(ctx, map[string]any{"epoch": epoch, "value": int64(1), "rounds": int64(1)})
		if status.Code(err) == codes.AlreadyExists {
			return fmt.Errorf("counter created concurrently by another holder (epoch %d)", epoch)
		}
		return err
	}
	if err != nil {
		return err
	}
	d := snap.Data()
	ce, _ := d["epoch"].(int64)
	if ce > epoch {
		return fmt.Errorf("STALE holder: counter at epoch %d, writer has %d", ce, epoch)
	}
	ups := []firestore.Update{{Path: "epoch", Value: epoch}, {Path: "value", Value: firestore.Increment(1)}}
	if newRound {
		ups = append(ups, firestore.Update{Path: "rounds", Value: firestore.Increment(1)})
	}
	_, err = counter.Update(ctx, ups, firestore.LastUpdateTime(snap.UpdateTime))
	if status.Code(err) == codes.FailedPrecondition {
		return fmt.Errorf("counter written concurrently by another holder (epoch %d)", epoch)
	}
	return err
}

func counterRounds(ctx context.Context, counter *firestore.DocumentRef) int64 {
	snap, err := counter.Get(ctx)
	if err != nil {
		return 0
	}
	n, _ := snap.Data()["rounds"].(int64)
	return n
}

var errFence = errors.New("fence")

// contend is one contender: rounds of acquire → hold (fenced writes) →
// graceful release → random pause, until the counter shows cfg.Target rounds.
func contend(ctx context.Context, c *firestore.Client, cfg childCfg, sink tenureSink, log *slog.Logger) error {
	counter := c.Doc(cfg.CounterDoc)
	for {
		if ctx.Err() != nil || counterRounds(ctx, counter) >= int64(cfg.Target) {
			return nil
		}
		var mu sync.Mutex
		var cur *tenure
		actives := make(chan int64, 4)
		lk, err := NewFirestore(FirestoreOptions{Client: c, DocPath: cfg.DocPath, InstanceID: cfg.Name, Host: cfg.Host,
			DataDir: cfg.DataDir, Timing: cfg.Timing, Logger: log, Callbacks: Callbacks{
				OnActive: func(e int64) {
					mu.Lock()
					cur = &tenure{Who: cfg.Name, Epoch: e, Start: sysMono()}
					mu.Unlock()
					actives <- e
				},
				OnPassive: func(string) {
					mu.Lock()
					if cur != nil {
						cur.End = sysMono()
						sink.tenure(*cur)
						cur = nil
					}
					mu.Unlock()
				},
			}})
		if err != nil {
			return err
		}
		rctx, cancel := context.WithCancel(ctx)
		runDone := make(chan struct{})
		go func() { _ = lk.Run(rctx); close(runDone) }()
		poll := time.NewTicker(100 * time.Millisecond)
	wait:
		for {
			select {
			case e := <-actives:
				for i := range 1 + rand.IntN(3) {
					if ep, ok := lk.Fence(); !ok || ep != e {
						break // stepped down while holding: stop writing
					}
					if err := fencedIncrement(rctx, counter, e, i == 0); err != nil && rctx.Err() == nil {
						sink.violation(fmt.Sprintf("%s: %v", cfg.Name, err))
					}
					time.Sleep(time.Duration(rand.IntN(10)) * time.Millisecond)
				}
				break wait
			case <-poll.C:
				if counterRounds(rctx, counter) >= int64(cfg.Target) {
					break wait
				}
			case <-ctx.Done():
				break wait
			}
		}
		poll.Stop()
		cancel()
		<-runDone
		time.Sleep(time.Duration(rand.IntN(40)) * time.Millisecond)
	}
}

type memSink struct {
	t   *testing.T
	rec *tenures
}

func (s memSink) tenure(t tenure)    { s.rec.add(t) }
func (s memSink) violation(m string) { s.t.Error("VIOLATION " + m) }

// TestContention: 8 contenders — 4 goroutines and 4 separate processes —
// hand the lease around for 200 rounds with random delays. No two tenures
// overlap, epochs grow with every change of holder, no fenced write is
// refused, and every round gets a holder.
func TestContention(t *testing.T) {
	t.Parallel()
	client, project := emuClient(t)
	host := fsemu.Host(t)
	target := 200
	if testing.Short() {
		target = 50
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "tenures")
	rec := newTenures()
	base := childBase(host, project)
	base.Mode, base.Target, base.CounterDoc, base.TenuresFile = "contend", target, "locktest/counter", file
	base.Host = "testhost"
	// A shorter retry than fast's makes hand-overs quicker, so that 200
	// rounds fit in the suite's time.
	base.Timing.Retry = 100 * time.Millisecond
	var children []*child
	for i := range 4 {
		cfg := base
		cfg.Name, cfg.DataDir = fmt.Sprintf("proc%d", i), filepath.Join(dir, fmt.Sprintf("p%d", i))
		children = append(children, startChild(t, cfg))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i := range 4 {
		cfg := base
		cfg.Name, cfg.DataDir = fmt.Sprintf("gor%d", i), filepath.Join(dir, fmt.Sprintf("g%d", i))
		wg.Go(func() {
			if err := contend(ctx, client, cfg, memSink{t, rec}, testLogger(t)); err != nil {
				t.Errorf("%s: %v", cfg.Name, err)
			}
		})
	}
	start := time.Now()
	wg.Wait()
	for _, c := range children {
		select {
		case <-c.done:
		case <-time.After(30 * time.Second):
			t.Fatalf("contender process did not finish")
		}
		if c.cmd.ProcessState.ExitCode() != 0 {
			t.Errorf("contender process exit %d: %s", c.cmd.ProcessState.ExitCode(), c.stderr.String())
		}
	}
	elapsed := time.Since(start)
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "VIOLATION") {
			t.Error(l)
			continue
		}
		var tn tenure
		if _, err := fmt.Sscanf(l, "%s %d %d %d", &tn.Who, &tn.Epoch, &tn.Start, &tn.End); err != nil {
			t.Fatalf("tenure line %q: %v", l, err)
		}
		rec.add(tn)
	}
	gap := rec.check(t)
	rounds := counterRounds(context.Background(), client.Doc(base.CounterDoc))
	if rounds < int64(target) {
		t.Fatalf("only %d of %d rounds had a holder", rounds, target)
	}
	by := map[string]int{}
	for _, tn := range rec.list {
		by[tn.Who]++
	}
	if len(rec.list) < target {
		t.Fatalf("%d tenures recorded for %d rounds", len(rec.list), rounds)
	}
	t.Logf("%d rounds, %d tenures in %s; largest gap between holders %s; tenures per contender %v", rounds, len(rec.list), elapsed.Round(time.Millisecond), gap.Round(time.Millisecond), by)
	if gap > fast.TTL+fast.Retry+2*time.Second {
		t.Errorf("a round waited %s for a holder (TTL %s + retry %s)", gap, fast.TTL, fast.Retry)
	}
}
