package audit

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/wactl/wactl/internal/cmdutil"
	"github.com/wactl/wactl/pkg/audit"
	"github.com/wactl/wactl/pkg/config"
)

// explainDenied wraps open so that a store this user may not read is
// refused with what a careful admin needs: whose store it is, why the wactl
// group does not help (it opens the daemon's socket, not the data dir,
// which is the service user's alone, mode 0700), and the exact command and
// crontab line that do work — run as the service user. Exit 1, as the
// help's table says for an audit that could not read its store.
func explainDenied(f *cmdutil.Factory, cmd *cobra.Command, open func(context.Context) (audit.Backend, error)) func(context.Context) (audit.Backend, error) {
	return func(ctx context.Context) (audit.Backend, error) {
		b, err := open(ctx)
		if err == nil {
			return b, nil
		}
		l, lerr := f.Config(cmd)
		if lerr != nil || !deniedStore(err, l.Config.Store.Backend, l.Config.Store.Path) {
			return nil, err
		}
		return nil, &cmdutil.ExitError{Code: cmdutil.ExitFailure, Err: errors.New(deniedMessage(cmd, l.Config.DataDir, l.Config.Store.Path))}
	}
}

func deniedStore(err error, backend, path string) bool {
	if backend != "" && backend != "embedded" {
		return false
	}
	if errors.Is(err, fs.ErrPermission) {
		return true
	}
	// The directory let us see the file but SQLite could not open it.
	f, oerr := os.Open(path)
	if oerr == nil {
		f.Close()
	}
	return errors.Is(oerr, fs.ErrPermission)
}

func deniedMessage(cmd *cobra.Command, dataDir, store string) string {
	owner := config.OwnerName(dataDir)
	me := strconv.Itoa(os.Geteuid())
	if u, err := user.Current(); err == nil && u.Username != "" {
		me = u.Username
	}
	line := "wactl " + strings.Join(rerun(cmd, dataDir), " ")
	bin := "/usr/bin/wactl"
	if exe, err := os.Executable(); err == nil && filepath.IsAbs(exe) {
		bin = exe
	}
	cron := "17 * * * * " + owner + " " + bin + strings.TrimPrefix(line, "wactl")
	return fmt.Sprintf("cannot read the wactl store %s as %s: permission denied.\n"+
		"The data dir %s belongs to the service user %s and only it may read it (mode 0700): joining the service's group opens the daemon's socket (pair, accounts list, doctor), not the store.\n"+
		"Run the audit as the service user:\n  sudo -u %s %s\n"+
		"From cron, run it as that user, e.g. in /etc/cron.d/wactl:\n  %s",
		store, me, dataDir, owner, owner, line, cron)
}

// rerun is the command line the user ran, with the data dir spelled out
// (sudo resets the environment that may have named it).
func rerun(cmd *cobra.Command, dataDir string) []string {
	args := strings.Fields(strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" "))
	visit := func(fl *pflag.Flag) {
		if fl.Name == "data-dir" || fl.Name == "help" {
			return
		}
		if fl.Value.Type() == "bool" {
			if fl.Value.String() == "true" {
				args = append(args, "--"+fl.Name)
			}
			return
		}
		args = append(args, "--"+fl.Name, shellQuote(fl.Value.String()))
	}
	cmd.Flags().Visit(visit)
	cmd.InheritedFlags().Visit(visit)
	return append(args, "--data-dir", shellQuote(dataDir))
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r == '/' || r == '.' || r == '_' || r == '-' || r == '+' || r == ':' || r == '=' || r == ',' ||
			'0' <= r && r <= '9' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z')
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
