// Package cmd is the entry point of the wactl binary.
package cmd

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/wactl/wactl/internal/cmd/root"
	"github.com/wactl/wactl/internal/cmdutil"
	"github.com/wactl/wactl/internal/iostreams"
)

// Main runs wactl with the process's arguments and streams and returns the
// exit code. SIGINT and SIGTERM cancel the root context; commands wind down
// and the process exits 130.
func Main() int { return mainWith(root.New, nil) }

// MainWith is Main with a factory adjusted first. Tests use it to run the
// real command tree in a child process with test hooks (the fake WhatsApp
// server); the shipped binary calls Main.
func MainWith(adjust func(*cmdutil.Factory)) int { return mainWith(root.New, adjust) }

func mainWith(newRoot func(*cmdutil.Factory) *cobra.Command, adjust func(*cmdutil.Factory)) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	f := &cmdutil.Factory{IO: iostreams.System(), ProcessLogger: true}
	if adjust != nil {
		adjust(f)
	}
	return run(ctx, f, newRoot, os.Args[1:])
}

// Run executes one command line with f's streams.
func Run(ctx context.Context, f *cmdutil.Factory, args []string) int {
	return run(ctx, f, root.New, args)
}

func run(ctx context.Context, f *cmdutil.Factory, newRoot func(*cmdutil.Factory) *cobra.Command, args []string) int {
	cmd := newRoot(f)
	cmd.SetArgs(args)
	cmd.SetIn(f.IO.In)
	cmd.SetOut(f.IO.Out)
	cmd.SetErr(f.IO.ErrOut)
	executed, err := cmd.ExecuteContextC(ctx)
	path := "wactl"
	if executed != nil {
		path = executed.CommandPath()
	}
	return cmdutil.HandleError(f.IO, ctx, err, path)
}
