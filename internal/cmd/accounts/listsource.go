package accounts

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"time"

	"github.com/wactl/wactl/internal/cmdutil"
	"github.com/wactl/wactl/internal/wiring"
	"github.com/wactl/wactl/pkg/config"
	"github.com/wactl/wactl/pkg/daemon"
	"github.com/wactl/wactl/pkg/sessions"
)

// listRows reads the accounts without creating or writing anything: from
// the sessions dir when this user can read it (with the daemon's live
// states), else from the running daemon over its socket (an operator in
// the service's group). When neither is there it says where it looked and
// where the service's data is (issue 17).
func listRows(ctx context.Context, o *ListOptions, l *config.Loaded) ([]Row, error) {
	cfg := &l.Config
	var status *daemon.Status
	admin, derr := daemon.DialAdmin(cfg.DataDir)
	if derr == nil {
		sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		if st, err := admin.Status(sctx); err == nil {
			status = &st
		}
		cancel()
	}
	sess, err := sessions.OpenExisting(cfg.Sessions.Path, sessions.Options{InstanceID: cfg.InstanceID,
		Logger: slog.New(slog.DiscardHandler), Postgres: wiring.SessionsPostgres(cfg)})
	var list []sessions.AccountStatus
	if err == nil {
		list, err = sess.List(ctx)
	}
	if err == nil {
		live := map[string]string{}
		if status != nil {
			for _, a := range status.Accounts {
				live[a.ID] = a.State
			}
		}
		rows := make([]Row, 0, len(list))
		for _, a := range list {
			r := Row{ID: a.ID, Session: string(a.Store), DeviceJID: a.DeviceJID, State: live[a.ID], Legacy: a.Legacy}
			if a.Account != nil {
				r.Name, r.Phone = a.Account.Name, a.Account.Phone
			}
			if a.Holder != nil {
				r.InUseBy = fmt.Sprintf("PID %d (%s)", a.Holder.PID, a.Holder.Instance)
			}
			rows = append(rows, r)
		}
		return rows, nil
	}
	var missing *sessions.MissingError
	denied := errors.Is(err, fs.ErrPermission)
	if status != nil && (denied || errors.As(err, &missing)) {
		// The daemon holds the accounts; this user cannot read its files.
		fmt.Fprintf(o.IO.ErrOut, "(from the wactl daemon at %s: %s is not readable by this user)\n", admin.Path(), cfg.Sessions.Path)
		rows := make([]Row, 0, len(status.Accounts))
		for _, a := range status.Accounts {
			r := Row{ID: a.ID, Name: a.Name, Phone: a.Phone, State: a.State, Session: "unpaired"}
			if a.HasDiskSession {
				r.Session = "paired"
			}
			rows = append(rows, r)
		}
		return rows, nil
	}
	var na *daemon.NotAllowedError
	switch {
	case errors.As(derr, &na):
		return nil, &cmdutil.ExitError{Code: cmdutil.ExitFailure, Err: fmt.Errorf("cannot read the accounts in %s: %w", cfg.Sessions.Path, na)}
	case denied:
		owner := "wactl"
		if uid, _, ok := daemon.OwnerOf(cfg.Sessions.Path); ok {
			owner = daemon.UserName(uid)
		}
		return nil, &cmdutil.ExitError{Code: cmdutil.ExitFailure, Err: fmt.Errorf(
			"cannot read %s (permission denied) and no wactl daemon answers for it: run as its owner: %saccounts list",
			cfg.Sessions.Path, daemon.SudoAs(owner))}
	case errors.As(err, &missing):
		return nil, &cmdutil.ExitError{Code: cmdutil.ExitFailure, Err: errors.New(nothingHere(l))}
	}
	return nil, err
}

// nothingHere is the message of a listing that found no data: where it
// looked, why there, and where the service's data is.
func nothingHere(l *config.Loaded) string {
	cfg := &l.Config
	why := "default: no config file, no WACTL_DATA_DIR, no --data-dir"
	if or := l.Origins["data_dir"]; or.Source != config.SourceDefault {
		why = "from " + string(or.Source)
		if or.Detail != "" {
			why += " " + or.Detail
		}
	}
	msg := fmt.Sprintf("no data in %s (data_dir %s, %s); nothing was created", cfg.Sessions.Path, cfg.DataDir, why)
	if hint := config.ServiceHint(cfg.DataDir, "accounts list"); hint != "" {
		msg += ".\nThe" + strings.TrimPrefix(hint, "the")
	} else {
		msg += ".\nPair an account with `wactl pair --phone +NUMBER`, or point --data-dir at the data dir of wactl serve"
	}
	return msg
}
