package daemon

import (
	"reflect"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store"
	waLog "go.mau.fi/whatsmeow/util/log"
)

// The gate reads whatsmeow's handler queue (an unexported field) and is
// called through the client's "Recv" logger: a whatsmeow upgrade that
// renames either fails here instead of silently opening the gate.
func TestIngestGateSeesWhatsmeowQueue(t *testing.T) {
	gate := ingestLogger(waLog.Noop, "acct")
	cli := whatsmeow.NewClient(&store.Device{}, gate)
	gate.attach(cli)
	q := gate.c.queue.Load()
	if q == nil {
		t.Fatal("whatsmeow.Client has no handlerQueue channel: the ingest gate cannot bound the queue")
	}
	if q.Cap() != 2048 {
		t.Logf("whatsmeow's handler queue holds %d nodes (was 2,048): check ingestLimits.perAccount", q.Cap())
	}
	if _, ok := gate.Sub("Recv").(*recvGate); !ok {
		t.Fatal(`the client's "Recv" logger is not the gate`)
	}
}

func TestQueuedTag(t *testing.T) {
	for xml, want := range map[string]bool{
		`<message from="1@s.whatsapp.net" id="X">`: true, "<message>": true, "<receipt id=\"1\"/>": true,
		`<notification type="x">`: true, "<call/>": true, `<iq type="result" id="1">`: false, "<ack/>": false,
		"<messages>": false, "<success/>": false, `<stream:error code="515"/>`: false, "": false, "<": false,
	} {
		if got := queuedTag(xml); got != want {
			t.Errorf("queuedTag(%q) = %v, want %v", xml, got, want)
		}
	}
}

// fakeQueue is a gated client whose queue is a plain channel, on a gate
// with a fake clock whose sleep runs step (a drain, a disconnect).
func fakeQueue(t *testing.T, queued int, step func(ch chan int, slept time.Duration)) (*ingestGate, *gatedClient, chan int, *bool) {
	t.Helper()
	ch := make(chan int, 64)
	for i := 0; i < queued; i++ {
		ch <- i
	}
	connected := true
	c := &gatedClient{account: "a", connectedFn: func() bool { return connected }}
	q := reflect.ValueOf(ch)
	c.queue.Store(&q)
	clock := time.Date(2026, 12, 4, 7, 0, 0, 0, time.UTC)
	var slept time.Duration
	g := &ingestGate{clients: map[*gatedClient]struct{}{},
		now: func() time.Time { return clock.Add(slept) },
		sleep: func(d time.Duration) {
			slept += d
			if step != nil {
				step(ch, slept)
			}
			if slept > time.Minute {
				t.Fatal("admit never returned")
			}
		}}
	return g, c, ch, &connected
}

func TestIngestGateWaitsForTheQueue(t *testing.T) {
	defer SetIngestLimits(4, 100)()
	// Drains one node every 100 ms: admitted once under the bound.
	var lastDrain time.Duration
	g, c, ch, _ := fakeQueue(t, 4, func(ch chan int, slept time.Duration) {
		if slept-lastDrain >= 100*time.Millisecond {
			<-ch
			lastDrain = slept
		}
	})
	g.admit(c)
	if len(ch) >= 4 || g.blocks.Load() != 1 || g.reliefs.Load() != 0 {
		t.Fatalf("admitted at %d queued (bound 4); blocks %d, reliefs %d", len(ch), g.blocks.Load(), g.reliefs.Load())
	}
	// Under the bound: no wait at all.
	g.admit(c)
	if g.blocks.Load() != 1 {
		t.Fatal("waited although under the bound")
	}
}

func TestIngestGateStallRelief(t *testing.T) {
	defer SetIngestLimits(4, 100)()
	// A queue that does not move (its handler waits on a reply behind the
	// held node): after stallRelief one more node is read.
	g, c, ch, _ := fakeQueue(t, 4, nil)
	g.admit(c)
	if g.reliefs.Load() != 1 || time.Duration(g.blockedNanos.Load()) < stallRelief {
		t.Fatalf("reliefs %d after %s blocked", g.reliefs.Load(), time.Duration(g.blockedNanos.Load()))
	}
	if len(ch) != 4 {
		t.Fatal("the fake queue moved")
	}
	// At twice the bound there is no relief: it waits until the client is
	// gone (or the queue moves).
	g2, c2, _, connected := fakeQueue(t, 8, nil)
	g2.sleep = func(inner func(time.Duration)) func(time.Duration) {
		var total time.Duration
		return func(d time.Duration) {
			inner(d)
			if total += d; total > 10*time.Second {
				*connected = false
			}
		}
	}(g2.sleep)
	g2.admit(c2)
	if g2.reliefs.Load() != 0 || time.Duration(g2.blockedNanos.Load()) < 10*time.Second {
		t.Fatalf("at twice the bound: reliefs %d, blocked %s", g2.reliefs.Load(), time.Duration(g2.blockedNanos.Load()))
	}
}
