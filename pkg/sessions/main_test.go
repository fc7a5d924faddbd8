package sessions

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Child processes are this test binary re-executed with childEnv set; they
// run one helper and never reach m.Run.
const childEnv = "WACTL_SESSIONS_TEST_CHILD"

func TestMain(m *testing.M) {
	if role := os.Getenv(childEnv); role != "" {
		os.Exit(runChild(role))
	}
	// Every test creates files under umask 000: modes must not depend on it.
	syscall.Umask(0)
	os.Exit(m.Run())
}

func runChild(role string) int {
	root, id := os.Getenv("ROOT"), os.Getenv("ACCOUNT")
	s, err := Open(root, Options{InstanceID: "child-" + role})
	if err != nil {
		fmt.Println("error:", err)
		return 2
	}
	switch role {
	case "lock":
		l, err := s.Lock(id)
		if err != nil {
			fmt.Println("error:", err)
			return 3
		}
		fmt.Println("locked")
		waitForStdinClose()
		l.Release()
		return 0
	case "device":
		d, err := s.OpenDevice(contextBackground(), id, DeviceOptions{})
		if err != nil {
			fmt.Println("error:", err)
			return 3
		}
		fmt.Println("locked")
		waitForStdinClose()
		d.Close()
		return 0
	case "meta-loop":
		// Rewrites account.json forever with alternating short and long names
		// until the parent kills it.
		for i := 0; ; i++ {
			name := "short"
			if i%2 == 1 {
				name = strings.Repeat("long", 4096)
			}
			if _, err := s.Update(id, func(a *Account) error { a.Name = name; return nil }); err != nil {
				fmt.Println("error:", err)
				return 3
			}
			if i == 0 {
				fmt.Println("looping")
			}
		}
	case "meta-crash":
		// Dies by SIGKILL at one step of the atomic write.
		stage := os.Getenv("STAGE")
		crashHook = func(s string) {
			if s == stage {
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
				time.Sleep(time.Minute)
			}
		}
		_, err := s.Update(id, func(a *Account) error { a.Name = "new"; return nil })
		fmt.Println("error: survived the crash point:", err)
		return 4
	}
	fmt.Println("error: unknown child role", role)
	return 5
}

func waitForStdinClose() { io.Copy(io.Discard, os.Stdin) }

// child is a running helper process.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
}

// startChild runs role and waits for its first output line.
func startChild(t *testing.T, role, root, id string, extraEnv ...string) (*child, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"="+role, "ROOT="+root, "ACCOUNT="+id)
	cmd.Env = append(cmd.Env, extraEnv...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout)}
	t.Cleanup(func() {
		if c.cmd.ProcessState == nil {
			c.cmd.Process.Kill()
			c.cmd.Wait()
		}
	})
	line, _ := c.out.ReadString('\n')
	return c, strings.TrimSpace(line)
}

func (c *child) kill9(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c.cmd.Wait() // reap, so the PID is really gone
}

func (c *child) wait() error {
	c.stdin.Close()
	return c.cmd.Wait()
}
