package lock

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/pkg/fsclient"
)

func TestMain(m *testing.M) {
	if cfg := os.Getenv(childEnv); cfg != "" {
		os.Exit(childMain(cfg))
	}
	os.Exit(fsemu.Main(m))
}

// childMain is a wactl-like process: it runs one lock and prints
// "ACTIVE <epoch> <ns from start>" / "PASSIVE <reason>" lines, and shuts down
// gracefully when its stdin closes.
func childMain(raw string) int {
	var cfg childCfg
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "child config:", err)
		return 2
	}
	begin := time.Now()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		_, _ = bufio.NewReader(os.Stdin).ReadByte() // EOF when the parent closes stdin
		cancel()
	}()
	signal.Ignore(syscall.SIGPIPE)
	cb := Callbacks{
		OnActive:  func(e int64) { fmt.Printf("ACTIVE %d %d\n", e, time.Since(begin).Nanoseconds()) },
		OnPassive: func(r string) { fmt.Printf("PASSIVE %s\n", r) },
	}
	var l Lock
	var err error
	switch cfg.Mode {
	case "embedded":
		l, err = NewEmbedded(EmbeddedOptions{DataDir: cfg.DataDir, InstanceID: cfg.Instance, Host: cfg.Host,
			Poll: cfg.Timing.Retry, Logger: log, Callbacks: cb})
	case "firestore", "contend":
		c, cerr := fsclient.New(ctx, fsclient.Options{ProjectID: cfg.Project, EmulatorHost: cfg.EmuHost})
		if cerr != nil {
			fmt.Fprintln(os.Stderr, cerr)
			return 2
		}
		defer c.Close()
		if cfg.Mode == "contend" {
			f, ferr := os.OpenFile(cfg.TenuresFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
			if ferr != nil {
				fmt.Fprintln(os.Stderr, ferr)
				return 2
			}
			defer f.Close()
			sink := &fileSink{f: f}
			if err := contend(ctx, c, cfg, sink, log); err != nil {
				fmt.Fprintln(os.Stderr, "contend:", err)
				return 1
			}
			return 0
		}
		l, err = NewFirestore(FirestoreOptions{Client: c, DocPath: cfg.DocPath, InstanceID: cfg.Instance, Host: cfg.Host,
			DataDir: cfg.DataDir, Timing: cfg.Timing, Logger: log, Callbacks: cb})
	default:
		err = fmt.Errorf("unknown child mode %q", cfg.Mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	fmt.Println("RUNNING")
	if err := l.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "Run:", err)
		return 1
	}
	fmt.Println("EXIT")
	return 0
}

// childBase fills what every Firestore child needs.
func childBase(host, project string) childCfg {
	return childCfg{EmuHost: host, Project: project, DocPath: DefaultDocPath, Timing: fast}
}
