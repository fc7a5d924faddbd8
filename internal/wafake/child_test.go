package wafake_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/wasock"
)

const (
	childEnv   = "WAFAKE_TEST_CHILD"
	childStore = "WAFAKE_TEST_CHILD_STORE"
	childJID   = "WAFAKE_TEST_CHILD_JID"
)

// childMain is a separate process, like `wactl serve` started by a daemon
// test: it restores a device from its SQLite file and logs in to the fake
// named by the environment, which is its only way to find and trust it.
func childMain() int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	jid, err := types.ParseJID(os.Getenv(childJID))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	container, err := wafake.OpenStore(ctx, os.Getenv(childStore))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer container.Close()
	dev, err := container.GetDevice(ctx, jid)
	if err != nil || dev == nil {
		fmt.Fprintln(os.Stderr, "device not in store", err)
		return 2
	}
	cli := whatsmeow.NewClient(dev, nil) // as production builds it: no wafake helper
	ok, err := wafake.ConfigureClientFromEnv(cli)
	if err != nil || !ok {
		fmt.Fprintln(os.Stderr, "ConfigureClientFromEnv:", ok, err)
		return 2
	}
	connected := make(chan struct{}, 1)
	cli.AddEventHandler(func(evt any) {
		if _, is := evt.(*events.Connected); is {
			connected <- struct{}{}
		}
	})
	if err := cli.Connect(); err != nil {
		fmt.Fprintln(os.Stderr, "connect:", err)
		return 1
	}
	defer wasock.Close(cli)
	select {
	case <-connected:
		return 0
	case <-ctx.Done():
		fmt.Fprintln(os.Stderr, "no Connected event")
		return 1
	}
}

func TestChildProcessFindsFakeThroughEnv(t *testing.T) {
	t.Parallel()
	srv := wafake.Start(t, fastOpts)
	cli, container, path, _ := pair(t, srv, "15550000050")
	jid := *cli.Store.ID
	wasock.Close(cli)
	_ = container.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", childStore+"="+path, childJID+"="+jid.String())
	cmd.Env = append(cmd.Env, srv.Env()...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child failed: %v\n%s", err, out)
	}
	// The fake records the close when it reads the end of the child's
	// socket, which can come a moment after the child has exited.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.WaitAllClosed(ctx); err != nil {
		t.Fatalf("the child's connection still open 10 s after it exited: %v", err)
	}
	recs := srv.DeviceConnections(jid)
	last := recs[len(recs)-1]
	if last.LoggedIn.IsZero() || last.Open() {
		t.Fatalf("child's connection record = %+v, want a finished login", last)
	}
}
