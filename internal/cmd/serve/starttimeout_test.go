package serve

import (
	"slices"
	"sync"
	"testing"
	"time"
)

type notes struct {
	mu     sync.Mutex
	states []string
}

func (n *notes) Notify(s string) {
	n.mu.Lock()
	n.states = append(n.states, s)
	n.mu.Unlock()
}

func (n *notes) list() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.states)
}

func TestExtendStartUntilStopped(t *testing.T) {
	n := &notes{}
	stop := extendStart(n, 5*time.Millisecond, 30*time.Second, time.Hour)
	for len(n.list()) < 3 {
		time.Sleep(time.Millisecond)
	}
	stop()
	got := n.list()
	for _, s := range got {
		if s != "EXTEND_TIMEOUT_USEC=30000000" {
			t.Fatalf("sent %q", s)
		}
	}
	time.Sleep(20 * time.Millisecond)
	if after := n.list(); len(after) != len(got) {
		t.Fatalf("%d extensions after stop returned", len(after)-len(got))
	}
	stop() // a second stop is harmless
}

// A start that hangs must still time out: the extensions end at the cap.
func TestExtendStartEndsAtTheCap(t *testing.T) {
	n := &notes{}
	start := time.Now()
	stop := extendStart(n, 2*time.Millisecond, time.Second, 300*time.Millisecond)
	defer stop()
	for len(n.list()) == 0 && time.Since(start) < 250*time.Millisecond {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(time.Until(start.Add(400 * time.Millisecond)))
	sent := len(n.list())
	time.Sleep(100 * time.Millisecond)
	if sent == 0 || sent > 151 || len(n.list()) != sent {
		t.Fatalf("%d extensions by the cap, %d later; want some, then none", sent, len(n.list())-sent)
	}
}
