package doctor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wactl/wactl/pkg/daemon"
)

// daemonAccounts asks the running daemon of dataDir for its accounts over
// the admin socket: the one in the data dir, else the service's runtime
// socket (group wactl), as `accounts list` does.
func daemonAccounts(ctx context.Context, dataDir string) (string, []daemon.AccountStatus, error) {
	c, err := daemon.DialAdmin(dataDir)
	if err != nil {
		return "", nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := c.Status(ctx)
	if err != nil {
		return c.Path(), nil, fmt.Errorf("daemon at %s: %w", c.Path(), err)
	}
	return c.Path(), st.Accounts, nil
}

// inventoryFromDaemon counts the accounts through the running daemon when
// this user may not read the session files (an operator in the service's
// group): the daemon lists every account dir it found and whether its
// session is paired. Nothing is opened on disk.
func inventoryFromDaemon(ctx context.Context, env *Env, dir string, readErr error) Result {
	var r Result
	me := env.Geteuid()
	asOwner := "sudo -u wactl "
	if uid, ok := ownerOfNearest(dir); ok {
		asOwner = sudoAs(me, uid)
	}
	count := asOwner + "wactl doctor --only sessions.inventory"
	if env.Offline {
		r.Status, r.Summary = Skip, fmt.Sprintf("skipped: %s is not readable by %s, and --offline does not ask the daemon", dir, userName(me))
		r.note("to count the accounts: wactl doctor --only sessions.inventory (asks the running daemon, for members of the service's group), or %s", count)
		return r
	}
	socket, accounts, err := env.DaemonAccounts(ctx, env.Config.DataDir)
	if err != nil {
		why := "no daemon answers"
		if errors.Is(err, daemon.ErrNotAllowed) {
			why = "the daemon's socket is not open to " + userName(me)
		}
		r.Status, r.Summary = Skip, fmt.Sprintf("skipped: %s is not readable by %s (%v), and %s", dir, userName(me), readErr, why)
		r.note("%v", err)
		r.note("to count the accounts from the files: %s", count)
		return r
	}
	paired := 0
	for _, a := range accounts {
		if a.HasDiskSession {
			paired++
		}
	}
	r.add("source", "daemon at "+socket)
	r.add("accounts", len(accounts))
	r.add("paired", paired)
	r.add("unpaired", len(accounts)-paired)
	r.note("%s is not readable by %s: counted by the running daemon; for the files' own check (corrupt, permissions): %s", dir, userName(me), count)
	if paired == 0 {
		r.warn("no paired session: nothing restores after a restart until an account is paired")
		r.fix(Fix{Summary: "pair an account (its own number instead of the example)", Commands: []string{"wactl pair --phone +40712345678"}})
		return r
	}
	r.set(OK, fmt.Sprintf("%d account(s), %d paired (from the daemon; the files are the service user's)", len(accounts), paired))
	return r
}
