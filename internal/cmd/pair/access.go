package pair

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/wactl/wactl/internal/cmdutil"
	"github.com/wactl/wactl/pkg/config"
	"github.com/wactl/wactl/pkg/daemon"
	"github.com/wactl/wactl/pkg/sessions"
)

// The service's data is not ours to touch (issue 17): the daemon's socket
// refused us, or no daemon answers and the data dir belongs to another
// user. Pairing locally would split the state or leave files the service
// cannot read, and a chown would take the sessions from the service; the
// command that works is the same pairing as the data dir's owner.

// notAllowed explains a refused daemon socket with the exact command.
func notAllowed(o *Options, na *daemon.NotAllowedError) error {
	msg := fmt.Sprintf("this user may not reach the wactl service's socket or data (%s: permission denied), so nothing was paired.\nPair as the service user:\n  %s",
		na.Path, na.SudoPrefix()+pairArgs(o))
	if na.Group != "" {
		msg += fmt.Sprintf("\nor join the group %s (sudo usermod -aG %s $USER, then log in again) and run wactl pair again", na.Group, na.Group)
	}
	return &cmdutil.ExitError{Code: cmdutil.ExitFailure, Err: errors.New(msg)}
}

// ownedByOther explains a data dir of another user with no daemon on it.
func ownedByOther(o *Options, cfg *config.Config, re *sessions.RootError) error {
	msg := fmt.Sprintf("no wactl daemon answers on %s and its sessions belong to %s: pairing here would leave files the service cannot read, so nothing was paired.\n"+
		"Start the service (sudo systemctl start wactl) and run wactl pair again, or pair as that user:\n  %s",
		cfg.DataDir, re.Owner, daemon.SudoAs(strings.Trim(re.Owner, "'"))+pairArgs(o))
	return &cmdutil.ExitError{Code: cmdutil.ExitFailure, Err: errors.New(msg)}
}

// pairArgs is this pairing's command line after "wactl ".
func pairArgs(o *Options) string {
	args := []string{"pair"}
	if o.Phone != "" {
		args = append(args, "--phone", o.Phone)
	}
	if o.AccountID != "" {
		args = append(args, "--account", o.AccountID)
	}
	if o.Name != "" {
		args = append(args, "--name", o.Name)
	}
	if o.Code {
		args = append(args, "--code")
	}
	if o.Force {
		args = append(args, "--force")
	}
	if o.Format == "json" {
		args = append(args, "--format", "json")
	}
	for i, a := range args {
		args[i] = shellQuote(a)
	}
	return strings.Join(args, " ")
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r == '/' || r == '.' || r == '_' || r == '-' || r == '+' || r == ':' || r == '=' ||
			'0' <= r && r <= '9' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z')
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// daemonHas says whether the daemon already knows account id.
func daemonHas(ctx context.Context, admin *daemon.AdminClient, id string) bool {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	st, err := admin.Status(ctx)
	if err != nil {
		return true // unknown: do not wait for it to go
	}
	for _, a := range st.Accounts {
		if a.ID == id {
			return true
		}
	}
	return false
}

// waitForgotten waits (briefly) until the daemon has dropped the account a
// failed pairing created. After Ctrl-C the daemon learns of the end only
// when the connection closes; "nothing was kept" is printed once it is so.
func waitForgotten(admin *daemon.AdminClient, id string) {
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if !daemonHas(context.Background(), admin, id) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}
