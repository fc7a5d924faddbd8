package lease

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/wactl/wactl/internal/cmdutil"
	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/internal/iostreams"
	"github.com/wactl/wactl/pkg/lock"
)

func TestMain(m *testing.M) { os.Exit(fsemu.Main(m)) }

func exitCode(err error) int {
	var ee *cmdutil.ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	var fe *cmdutil.FlagError
	if errors.As(err, &fe) {
		return cmdutil.ExitUsage
	}
	if err != nil {
		return cmdutil.ExitFailure
	}
	return 0
}

func TestLeaseRelease(t *testing.T) {
	c, _ := fsemu.NewClient(t)
	ctx := context.Background()
	open := func(context.Context) (*firestore.Client, string, func(), error) { return c, "", func() {}, nil }
	run := func(holder string) (releaseJSON, int) {
		t.Helper()
		ios, _, out, _ := iostreams.Test()
		err := Release(ctx, &ReleaseOptions{IO: ios, Holder: holder, Open: open, MinIdle: 3 * time.Second})
		var got releaseJSON
		if code := exitCode(err); code != cmdutil.ExitUsage {
			if jerr := json.Unmarshal(out.Bytes(), &got); jerr != nil {
				t.Fatalf("output %q (%v): %v", out, err, jerr)
			}
		}
		return got, exitCode(err)
	}
	if _, code := run(""); code != cmdutil.ExitUsage {
		t.Fatalf("no --holder: exit %d", code)
	}
	// The old service's lease, just renewed (its five fields only).
	if _, err := c.Doc(lock.DefaultDocPath).Set(ctx, map[string]any{"holderInstanceId": "vm",
		"leaseUntil": time.Now().Add(90 * time.Second).UnixMilli(), "acquiredAt": firestore.ServerTimestamp,
		"updatedAt": firestore.ServerTimestamp, "previousHolder": nil}); err != nil {
		t.Fatal(err)
	}
	if got, code := run("vm"); code != cmdutil.ExitProblems || !got.Refused || got.Released || !strings.Contains(got.Detail, "still running") {
		t.Fatalf("fresh lease: exit %d %+v", code, got)
	}
	if got, code := run("other"); code != cmdutil.ExitProblems || !got.Refused {
		t.Fatalf("other holder: exit %d %+v", code, got)
	}
	if got, code := run("wactl:vm"); code != cmdutil.ExitProblems || !got.Refused || !strings.Contains(got.Detail, "wactl holder") {
		t.Fatalf("a wactl: holder: exit %d %+v", code, got)
	}
	time.Sleep(3200 * time.Millisecond)
	got, code := run("vm")
	if code != 0 || !got.Released || got.Lease.Holder != "vm" || got.Lease.Format != "legacy" || got.Lease.SinceWriteSec < 3 {
		t.Fatalf("stale lease: exit %d %+v", code, got)
	}
	if got, code := run("vm"); code != 0 || got.Released || !strings.Contains(got.Detail, "already expired") {
		t.Fatalf("second run: exit %d %+v", code, got)
	}
}
