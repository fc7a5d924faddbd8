package pair_test

import (
	"context"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types/events"

	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/wasock"
	"github.com/wactl/wactl/internal/watest/child"
	"github.com/wactl/wactl/pkg/dedupe"
	"github.com/wactl/wactl/pkg/pair/pairtest"
	"github.com/wactl/wactl/pkg/sessions"
	"github.com/wactl/wactl/pkg/wmlog"
)

// TestMain makes the test binary `wactl` in child processes (WACTL_TEST_MAIN=1),
// with the fake WhatsApp server's address taken from the environment.
func TestMain(m *testing.M) {
	wmlog.ReplaceLibsignal(nil)
	child.Run()
	os.Exit(m.Run())
}

// tmuxSession runs wactl in a real terminal (tmux) and reads its screen.
type tmuxSession struct {
	t    *testing.T
	name string
	sock string
}

func needTmux(t *testing.T) string {
	path, err := exec.LookPath("tmux")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("tmux is missing: install the tmux package")
		}
		t.Skip("SKIPPED LOUDLY: tmux not installed")
	}
	return path
}

func startTmux(t *testing.T, env []string, args ...string) *tmuxSession {
	return startTmuxSized(t, 140, 70, env, args...)
}

// startTmuxSized runs wactl in a cols×rows terminal.
func startTmuxSized(t *testing.T, cols, rows int, env []string, args ...string) *tmuxSession {
	var line strings.Builder
	line.WriteString("env")
	for _, e := range env {
		line.WriteString(" '" + e + "'")
	}
	line.WriteString(" " + os.Args[0])
	for _, a := range args {
		line.WriteString(" '" + a + "'")
	}
	return startTmuxLine(t, cols, rows, line.String())
}

// startTmuxLine runs a shell command line in a cols×rows terminal.
func startTmuxLine(t *testing.T, cols, rows int, cmdline string) *tmuxSession {
	needTmux(t)
	s := &tmuxSession{t: t, name: "wactl", sock: filepath.Join(t.TempDir(), "tmux.sock")}
	var line strings.Builder
	line.WriteString(cmdline)
	// Keep the pane after exit so the outcome and exit code can be read.
	line.WriteString("; echo EXIT=$?; sleep 120")
	c := exec.Command("tmux", "-S", s.sock, "new-session", "-d", "-s", s.name, "-x", fmt.Sprint(cols), "-y", fmt.Sprint(rows), line.String())
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("tmux: %v %s", err, out)
	}
	t.Cleanup(func() {
		s.interruptAndWait()
		exec.Command("tmux", "-S", s.sock, "kill-server").Run()
	})
	return s
}

// interruptAndWait ends a command still running in the terminal as an
// operator would (Ctrl-C) and waits until it has exited. Killing the tmux
// server is not enough: wactl tidies its session files after a signal, and
// that must be over before t.TempDir's removal starts, or the removal finds
// new entries and the test fails.
func (s *tmuxSession) interruptAndWait() {
	exited := func() bool { return strings.Contains(s.screen(), "EXIT=") }
	if exited() {
		return
	}
	exec.Command("tmux", "-S", s.sock, "send-keys", "-t", s.name, "C-c").Run()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if exited() {
			return
		}
	}
	s.t.Errorf("the command in the terminal did not exit within 20 s of Ctrl-C; screen:\n%s", s.screen())
}

func (s *tmuxSession) screen() string {
	out, err := exec.Command("tmux", "-S", s.sock, "capture-pane", "-p", "-t", s.name).Output()
	if err != nil {
		return ""
	}
	return string(out)
}

func (s *tmuxSession) keys(k ...string) {
	args := append([]string{"-S", s.sock, "send-keys", "-t", s.name}, k...)
	if out, err := exec.Command("tmux", args...).CombinedOutput(); err != nil {
		s.t.Fatalf("send-keys: %v %s", err, out)
	}
}

func (s *tmuxSession) waitFor(what string, d time.Duration, cond func(string) bool) string {
	s.t.Helper()
	deadline := time.Now().Add(d)
	for {
		scr := s.screen()
		if cond(scr) {
			return scr
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("timed out waiting for %s; screen:\n%s", what, scr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// readQR waits until a QR code on the screen decodes, and returns it.
func (s *tmuxSession) readQR() string {
	s.t.Helper()
	var code string
	s.waitFor("a scannable QR code", 20*time.Second, func(scr string) bool {
		mods, err := pairtest.ParseHalfBlocks(scr, false)
		if err != nil {
			return false
		}
		code, err = pairtest.Decode(mods)
		return err == nil
	})
	return code
}

func childEnv(srv *wafake.Server, dataDir string) []string {
	return append([]string{"WACTL_TEST_MAIN=1", "STATE_DIRECTORY=" + dataDir, "TERM=xterm-256color", "HOME=" + dataDir}, srv.Env()...)
}

// TestPairInTerminal is the operator's experience: `wactl pair` draws the
// QR code in a real terminal, the phone scans what is on the screen, the
// terminal says "Paired", and a new process restores the session without
// a QR.
func TestPairInTerminal(t *testing.T) {
	srv := wafake.Start(t)
	dataDir := t.TempDir()
	phone := "40744000001"
	s := startTmux(t, childEnv(srv, dataDir), "pair", "--phone", "+"+phone, "--name", "Front desk")
	code := s.readQR()
	if !strings.HasPrefix(code, "2@") {
		t.Fatalf("decoded %q, not a WhatsApp pairing code", code)
	}
	ctx := context.Background()
	if _, err := srv.Scan(ctx, code, phone); err != nil {
		t.Fatalf("the phone could not use the code read off the screen: %v", err)
	}
	scr := s.waitFor("paired outcome", 20*time.Second, func(scr string) bool { return strings.Contains(scr, "EXIT=") })
	if !strings.Contains(scr, "Paired as +"+phone) || !strings.Contains(scr, "EXIT=0") {
		t.Fatalf("screen:\n%s", scr)
	}

	// A new process (this one) restores the session from disk: no QR.
	sess, err := sessions.Open(filepath.Join(dataDir, "sessions"), sessions.Options{})
	if err != nil {
		t.Fatal(err)
	}
	id, _ := dedupe.AccountID("prod", phone, "40")
	dev, err := sess.OpenDevice(ctx, id, sessions.DeviceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	cli := srv.NewClient(dev.Store, nil)
	got := make(chan struct{}, 1)
	cli.AddEventHandler(func(e any) {
		switch e.(type) {
		case *events.Connected:
			got <- struct{}{}
		case *events.QR:
			t.Error("restored session asked for a QR")
		}
	})
	if err := cli.Connect(); err != nil {
		t.Fatal(err)
	}
	defer wasock.Close(cli)
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("restored session did not connect")
	}
}

// TestPairInTerminalCtrlC: Ctrl-C midway exits 130 and leaves no account.
func TestPairInTerminalCtrlC(t *testing.T) {
	srv := wafake.Start(t)
	dataDir := t.TempDir()
	s := startTmux(t, childEnv(srv, dataDir), "pair", "--phone", "+40744000002")
	s.readQR()
	s.keys("C-c")
	scr := s.waitFor("exit", 15*time.Second, func(scr string) bool { return strings.Contains(scr, "EXIT=") })
	if !strings.Contains(scr, "EXIT=130") {
		t.Fatalf("screen:\n%s", scr)
	}
	entries, _ := os.ReadDir(filepath.Join(dataDir, "sessions"))
	for _, e := range entries {
		if e.Name() != "removed" {
			t.Fatalf("left behind after Ctrl-C: %s", e.Name())
		}
	}
}

// TestPairRefusesTooNarrowTerminal: a QR code wider than the terminal is
// not drawn; the operator is told how wide the terminal must be.
func TestPairRefusesTooNarrowTerminal(t *testing.T) {
	srv := wafake.Start(t)
	dataDir := t.TempDir()
	s := startTmuxSized(t, 40, 30, childEnv(srv, dataDir), "pair", "--phone", "+40744000003")
	s.waitFor("too-wide message", 20*time.Second, func(scr string) bool {
		return strings.Contains(strings.ReplaceAll(scr, "\n", ""), "columns")
	})
	if _, err := pairtest.ParseHalfBlocks(s.screen(), false); err == nil {
		t.Fatal("a QR code was drawn in a 40-column terminal")
	}
}

// TestPairQRAt80x40: an SSH session of 80×40 fits the code whole; the code
// is read off the screen and the phone pairs with it.
func TestPairQRAt80x40(t *testing.T) {
	srv := wafake.Start(t)
	dataDir := t.TempDir()
	phone := "40744000004"
	s := startTmuxSized(t, 80, 40, childEnv(srv, dataDir), "pair", "--phone", "+"+phone)
	code := s.readQR()
	if _, err := srv.Scan(context.Background(), code, phone); err != nil {
		t.Fatalf("the phone could not use the code read off an 80×40 screen: %v", err)
	}
	scr := s.waitFor("paired outcome", 20*time.Second, func(scr string) bool { return strings.Contains(scr, "EXIT=") })
	if !strings.Contains(scr, "EXIT=0") {
		t.Fatalf("screen:\n%s", scr)
	}
}

// TestPairQRAt80x24: a WhatsApp code cannot fit 24 rows; wactl says so,
// whole, on screen, and draws no cut-off code. --qr-png then pairs in the
// same terminal: the phone scans the image.
func TestPairQRAt80x24(t *testing.T) {
	srv := wafake.Start(t)
	dataDir := t.TempDir()
	s := startTmuxSized(t, 80, 24, childEnv(srv, dataDir), "pair", "--phone", "+40744000005")
	scr := s.waitFor("the does-not-fit message", 20*time.Second, func(scr string) bool {
		return strings.Contains(strings.Join(strings.Fields(scr), " "), "--qr-png FILE")
	})
	flat := strings.Join(strings.Fields(scr), " ")
	if !strings.Contains(flat, "× 24") || !strings.Contains(flat, "--code") {
		t.Fatalf("the message does not give the size and the ways out:\n%s", scr)
	}
	if strings.ContainsAny(scr, "█▀▄") {
		t.Fatalf("a code was drawn in an 80×24 terminal:\n%s", scr)
	}
	s.keys("C-c")
	s.waitFor("exit", 15*time.Second, func(scr string) bool { return strings.Contains(scr, "EXIT=") })

	png := filepath.Join(t.TempDir(), "pair.png")
	phone := "40744000006"
	s2 := startTmuxSized(t, 80, 24, childEnv(srv, dataDir), "pair", "--phone", "+"+phone, "--qr-png", png)
	s2.waitFor("the image's path", 20*time.Second, func(scr string) bool {
		return strings.Contains(strings.Join(strings.Fields(scr), ""), png)
	})
	code := decodePNG(t, png)
	if _, err := srv.Scan(context.Background(), code, phone); err != nil {
		t.Fatalf("the phone could not use the PNG's code: %v", err)
	}
	scr = s2.waitFor("paired outcome", 20*time.Second, func(scr string) bool { return strings.Contains(scr, "EXIT=") })
	if !strings.Contains(scr, "EXIT=0") {
		t.Fatalf("screen:\n%s", scr)
	}
	if _, err := os.Stat(png); !os.IsNotExist(err) {
		t.Fatalf("the PNG was left behind after pairing: %v", err)
	}
}

func decodePNG(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("%s has mode %v: a pairing code must be private", path, st.Mode().Perm())
	}
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	code, err := pairtest.DecodeImage(img)
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// TestPairQRNotIntoRedirectedStderr: with stderr in a file, the code is not
// written there (a log would keep it) unless --qr-text asks for it.
func TestPairQRNotIntoRedirectedStderr(t *testing.T) {
	srv := wafake.Start(t)
	dataDir := t.TempDir()
	for _, tc := range []struct {
		extra []string
		drawn bool
	}{{nil, false}, {[]string{"--qr-text"}, true}} {
		logf := filepath.Join(t.TempDir(), "stderr.log")
		args := append([]string{"pair", "--phone", "+40744000007"}, tc.extra...)
		// In tmux (a terminal on stdin and stdout) but stderr to a file.
		line := []string{}
		for _, a := range args {
			line = append(line, "'"+a+"'")
		}
		s := startTmuxLine(t, 140, 70, "env "+strings.Join(childEnv(srv, dataDir), " ")+" "+os.Args[0]+" "+strings.Join(line, " ")+" 2>"+logf)
		deadline := time.Now().Add(20 * time.Second)
		var got string
		for time.Now().Before(deadline) {
			b, _ := os.ReadFile(logf)
			got = string(b)
			if strings.Contains(got, "not drawn") || strings.ContainsAny(got, "█▀▄") {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		_, err := pairtest.ParseHalfBlocks(got, false)
		if drawn := err == nil; drawn != tc.drawn {
			t.Fatalf("%v: code in the redirected stderr = %v, want %v:\n%s", tc.extra, drawn, tc.drawn, got)
		}
		if !tc.drawn && !strings.Contains(got, "--qr-png") {
			t.Fatalf("no explanation in the redirected stderr:\n%s", got)
		}
		s.interruptAndWait()
	}
}
