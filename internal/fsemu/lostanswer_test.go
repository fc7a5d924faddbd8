package fsemu_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/wactl/wactl/internal/fsemu"
)

// TestWriteRidesOutLostAnswers is the emulator behaviour behind a CI
// failure (TestDeposedOutboxFenced: "code = Canceled desc = call already
// cancelled"): a write made just after a listener of its document stopped
// is applied but answered with an error. Four writers each stop a listener
// and write 300 times; every write must be answered and be in the store.
// A plain doc.Set in place of fsemu.Write fails here (2–9 of the 1,200
// writes are answered with an error).
func TestWriteRidesOutLostAnswers(t *testing.T) {
	c, _ := fsemu.NewClient(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			doc := c.Collection("probe").Doc(fmt.Sprint("d", w))
			for i := range 300 {
				lctx, cancel := context.WithCancel(ctx)
				it := doc.Snapshots(lctx)
				_, _ = it.Next()
				go func() { cancel(); it.Stop() }()
				if err := fsemu.Write(ctx, func(ctx context.Context) error {
					_, err := doc.Set(ctx, map[string]any{"i": i})
					return err
				}); err != nil {
					errs <- fmt.Errorf("writer %d, write %d: %w", w, i, err)
					return
				}
				snap, err := doc.Get(ctx)
				if err != nil {
					errs <- err
					return
				}
				if got, _ := snap.DataAt("i"); got != int64(i) {
					errs <- fmt.Errorf("writer %d: write %d not in the store (i=%v)", w, i, got)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
