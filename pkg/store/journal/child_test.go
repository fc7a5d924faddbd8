package journal_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wactl/wactl/pkg/fsclient"
	fsstore "github.com/wactl/wactl/pkg/store/firestore"
	"github.com/wactl/wactl/pkg/store/journal"
)

// childEnv makes the test binary a recording process: it records messages
// START..END-1 through a journal and prints "ack N" once RecordMessage(N)
// returned, then flushes and exits. The parent kills it with SIGKILL.
const childEnv = "WACTL_JOURNAL_CHILD"

func childMain() int {
	get := func(k string) string { return os.Getenv("WACTL_CHILD_" + k) }
	start, _ := strconv.Atoi(get("START"))
	end, _ := strconv.Atoi(get("END"))
	ctx := context.Background()
	b, err := fsstore.Open(ctx, fsstore.Options{Connection: fsclient.Options{ProjectID: get("PROJECT"), EmulatorHost: get("HOST")}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	j, err := journal.Open(get("PATH"), b, journal.Options{
		NoInline: get("NOINLINE") == "1", CallTimeout: 10 * time.Second,
		MinBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond, BatchSize: 300,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	out := bufio.NewWriter(os.Stdout)
	for i := start; i < end; i++ {
		if _, err := j.RecordMessage(ctx, msg(i)); err != nil {
			fmt.Fprintln(os.Stderr, "record", i, err)
			return 3
		}
		fmt.Fprintf(out, "ack %d\n", i)
		out.Flush()
	}
	fctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if err := j.Flush(fctx); err != nil {
		fmt.Fprintln(os.Stderr, "flush", err)
		return 4
	}
	fmt.Fprintln(out, "flushed")
	out.Flush()
	if err := j.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "close", err)
		return 5
	}
	return 0
}

// child runs the recording process; killAt > 0 kills it with SIGKILL once
// that many acks were seen. It returns the highest acknowledged message.
func child(t *testing.T, env map[string]string, start, end, killAt int) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1",
		"WACTL_CHILD_START="+strconv.Itoa(start), "WACTL_CHILD_END="+strconv.Itoa(end))
	for k, v := range env {
		cmd.Env = append(cmd.Env, "WACTL_CHILD_"+k+"="+v)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	last, acks, flushed := start-1, 0, false
	var once sync.Once
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		if n, ok := strings.CutPrefix(line, "ack "); ok {
			last, _ = strconv.Atoi(n)
			acks++
			if killAt > 0 && acks >= killAt {
				once.Do(func() { _ = cmd.Process.Signal(syscall.SIGKILL) })
			}
		}
		flushed = flushed || line == "flushed"
	}
	err = cmd.Wait()
	if killAt > 0 {
		if flushed || err == nil {
			t.Fatalf("child was not killed mid-way (acks %d, err %v)", acks, err)
		}
		return last
	}
	if err != nil || !flushed {
		t.Fatalf("child %d..%d: %v (flushed %v)\n%s", start, end, err, flushed, stderr.String())
	}
	return last
}
