package lock

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wactl/wactl/internal/fsemu"
)

// commitGate spoils the answer of the next Commit: after the emulator made
// it ("applied": the answer is lost on the way back, as the emulator itself
// does when a listener of the document just stopped) or instead of sending
// it ("unsent": a server error, nothing written).
type commitGate struct {
	mu   sync.Mutex
	mode string
}

func (g *commitGate) arm(mode string) {
	g.mu.Lock()
	g.mode = mode
	g.mu.Unlock()
}

func (g *commitGate) intercept(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if !strings.HasSuffix(method, "/Commit") {
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	g.mu.Lock()
	mode := g.mode
	g.mode = ""
	g.mu.Unlock()
	switch mode {
	case "applied":
		if err := invoker(ctx, method, req, reply, cc, opts...); err != nil {
			return err
		}
		return status.Error(codes.Canceled, "test: the answer was lost")
	case "unsent":
		// Internal, not Unavailable: the client library retries that
		// itself, and the point is what the lock does.
		return status.Error(codes.Internal, "test: the write was not made")
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}

// TestReleaseSurvivesALostAnswer: a graceful release whose write comes
// back with an error reads the lease again instead of giving up. Before,
// an answer lost after the write logged "could not release the lease"
// although it was released, and a write that was not made left the
// standby waiting out the TTL.
func TestReleaseSurvivesALostAnswer(t *testing.T) {
	for _, mode := range []string{"applied", "unsent"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			gate := &commitGate{}
			c, _ := fsemu.NewClientVia(t, grpc.WithChainUnaryInterceptor(gate.intercept))
			l := newFS(t, c, "a", newWatcher("a", nil), nil)
			ctx := context.Background()
			if out := l.attempt(ctx, 10*time.Second, false); !out.wrote || out.err != nil {
				t.Fatalf("acquire: %+v", out)
			}
			gate.arm(mode)
			if err := l.release(ctx); err != nil {
				t.Fatalf("release: %v", err)
			}
			v, err := ReadLease(ctx, c, "")
			if err != nil || !v.Exists || !v.Expired {
				t.Fatalf("lease after release: %+v %v", v, err)
			}
			if d := leaseDoc(t, c); d[fSession] != nil || d[fBinding] != nil {
				t.Fatalf("holder fields kept: %v", d)
			}
		})
	}
}
