package cmdutil

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/wactl/wactl/internal/iostreams"
	"github.com/wactl/wactl/pkg/config"
)

// Exit codes of every wactl command. They are applied in one place,
// HandleError, and listed in each command's help.
const (
	ExitOK          = 0   // success
	ExitFailure     = 1   // the command failed
	ExitUsage       = 2   // bad flags or arguments
	ExitProblems    = 3   // the command ran and found problems (doctor, audit)
	ExitConfig      = 78  // the configuration is invalid (EX_CONFIG; systemd does not restart on it)
	ExitInterrupted = 130 // interrupted by SIGINT or SIGTERM
)

// ExitCodesHelp is appended to the help of every command.
const ExitCodesHelp = `Exit codes:
  0    success
  1    failure
  2    bad flags or arguments
  3    problems found (checks, audits)
  78   invalid configuration
  130  interrupted (SIGINT/SIGTERM)`

// ExitError carries a specific exit code. With Silent the command already
// told the user everything and HandleError prints nothing more.
type ExitError struct {
	Code   int
	Err    error
	Silent bool
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// FlagError is a usage mistake: bad flag, missing or extra argument.
type FlagError struct{ Err error }

func (e *FlagError) Error() string { return e.Err.Error() }
func (e *FlagError) Unwrap() error { return e.Err }

// FlagErrorf builds a FlagError.
func FlagErrorf(format string, a ...any) error {
	return &FlagError{Err: fmt.Errorf(format, a...)}
}

// HandleError prints err for a person and returns the process exit code.
func HandleError(ios *iostreams.IOStreams, ctx context.Context, err error, cmdPath string) int {
	if err == nil {
		return ExitOK
	}
	st := ios.StyleErr()
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, ctx.Err())) {
		fmt.Fprintln(ios.ErrOut, "interrupted")
		return ExitInterrupted
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		if !ee.Silent && ee.Err != nil {
			fmt.Fprintf(ios.ErrOut, "%s %s\n", st.Red("error:"), ee.Err)
		}
		return ee.Code
	}
	var pe *config.ProblemsError
	if errors.As(err, &pe) {
		fmt.Fprintf(ios.ErrOut, "%s %s\n", st.Red("error:"), pe)
		fmt.Fprintln(ios.ErrOut, "Fix the values above; `wactl config show` lists every key and where its value comes from.")
		return ExitConfig
	}
	var fe *FlagError
	if errors.As(err, &fe) || strings.HasPrefix(err.Error(), "unknown command") {
		fmt.Fprintf(ios.ErrOut, "%s %s\n", st.Red("error:"), err)
		fmt.Fprintf(ios.ErrOut, "Run '%s --help' for usage.\n", cmdPath)
		return ExitUsage
	}
	if ctx.Err() != nil {
		fmt.Fprintf(ios.ErrOut, "%s %s (interrupted)\n", st.Red("error:"), err)
		return ExitInterrupted
	}
	fmt.Fprintf(ios.ErrOut, "%s %s\n", st.Red("error:"), err)
	return ExitFailure
}
