// Package lease implements `wactl lease`: operator commands on the lease
// document shared with the old Node service.
package lease

import (
	"context"
	"errors"
	"fmt"
	"time"

	"cloud.google.com/go/firestore"
	"github.com/spf13/cobra"

	"github.com/wactl/wactl/internal/cmdutil"
	"github.com/wactl/wactl/internal/iostreams"
	"github.com/wactl/wactl/internal/wiring"
	"github.com/wactl/wactl/pkg/fsclient"
	"github.com/wactl/wactl/pkg/lock"
)

// New returns `wactl lease` with its subcommands.
func New(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lease",
		Short: "Operate on the Firestore lease shared with the old service",
	}
	cmd.AddCommand(newRelease(f))
	return cmd
}

// ReleaseOptions of `wactl lease release`.
type ReleaseOptions struct {
	IO     *iostreams.IOStreams
	Holder string
	JSON   bool
	// MinIdle: how long Firestore's clock must show the document unwritten
	// (default lock.LegacyRenewInterval, the old service's renew interval).
	MinIdle time.Duration
	// Open returns the Firestore client and the lease document path.
	Open func(ctx context.Context) (c *firestore.Client, docPath string, closeFn func(), err error)
}

func newRelease(f *cmdutil.Factory) *cobra.Command {
	o := &ReleaseOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "release --holder ID",
		Short: "End the lease a stopped old Node service left behind",
		Long: `The deployed old service (whatsapp-backend, 692eef65) does not delete its
lease when it stops: its SIGINT/SIGTERM handler exits before the release
code runs, so wactl waits until the lease runs out (up to 90 s). After you
have stopped the old service, this command ends its lease at once.

It refuses unless all of these hold, judged on Firestore's clock (the read
time and the document's update time, never this host's clock):
  - the lease document is in the old service's format (no valid wactl
    binding: a running wactl's lease is never touched — stop that wactl);
  - it names --holder ID (the old service's INSTANCE_ID, usually its host
    name; 'wactl doctor' and /ready show it). wactl writes its own holder
    as wactl:<instance id>, so the old service never takes wactl's lease
    for its own; a wactl:… holder is refused: a stopped wactl releases
    its lease itself, and a killed one's runs out within lock.ttl;
  - it has not been renewed for longer than the old service's renew
    interval (30 s): a running old service rewrites it every 30 s.
It then sets leaseUntil to Firestore's current time (conditional on the
document being the one it judged); holderInstanceId, previousHolder and
wactl's epoch stay. wactl takes over at its next attempt (within
lock.retry_interval).

  sudo systemctl stop whatsapp-backend
  wactl lease release --holder "$(hostname)"

Exit codes:
  0    the lease was ended, or nothing blocks a takeover (no document, or
       the lease already expired)
  1    failure (Firestore unreachable, ...)
  2    bad flags or arguments (e.g. no --holder), or the lock is not in
       Firestore
  3    refused: not the old service's lease (a wactl binding, or a
       wactl:… holder), another holder, or renewed within the last 30 s
       (the old service still runs)
  78   invalid configuration
  130  interrupted (SIGINT/SIGTERM)`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Open = openFromConfig(f, cmd)
			return Release(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Holder, "holder", "", "holderInstanceId of the old service whose lease to end (required)")
	fl.BoolVar(&o.JSON, "json", false, "print JSON (the default when stdout is not a terminal)")
	return cmd
}

func openFromConfig(f *cmdutil.Factory, cmd *cobra.Command) func(context.Context) (*firestore.Client, string, func(), error) {
	return func(ctx context.Context) (*firestore.Client, string, func(), error) {
		l, err := f.Config(cmd)
		if err != nil {
			return nil, "", nil, err
		}
		cfg := &l.Config
		if cfg.LockBackend() != "firestore" {
			return nil, "", nil, cmdutil.FlagErrorf("the lock is %q, not the Firestore lease shared with the old service: nothing to release (set lock.backend: firestore, or store.backend: firestore with lock.backend: auto)", cfg.LockBackend())
		}
		c, err := fsclient.New(ctx, wiring.FirestoreOptions(cfg))
		if err != nil {
			return nil, "", nil, err
		}
		return c, cfg.Lock.Document, func() { c.Close() }, nil
	}
}

// releaseJSON is the --json answer.
type releaseJSON struct {
	Released bool           `json:"released"`
	Refused  bool           `json:"refused"`
	Detail   string         `json:"detail"`
	Holder   string         `json:"holder"`
	Lease    lock.LeaseView `json:"lease"`
}

// Release runs `wactl lease release`.
func Release(ctx context.Context, o *ReleaseOptions) error {
	if o.Holder == "" {
		return cmdutil.FlagErrorf("--holder ID is required: the holderInstanceId of the stopped old service ('wactl doctor' prints the exact command)")
	}
	c, docPath, closeFn, err := o.Open(ctx)
	if err != nil {
		return err
	}
	defer closeFn()
	minIdle := o.MinIdle
	if minIdle <= 0 {
		minIdle = lock.LegacyRenewInterval
	}
	r, err := lock.ReleaseLegacy(ctx, c, docPath, o.Holder, minIdle)
	refused := errors.Is(err, lock.ErrReleaseRefused)
	if err != nil && !refused {
		return err
	}
	out := releaseJSON{Released: r.Released, Refused: refused, Detail: r.Detail, Holder: o.Holder, Lease: r.Lease}
	if refused {
		out.Detail = err.Error()
	}
	if o.JSON || !o.IO.IsStdoutTTY() {
		if werr := cmdutil.WriteJSON(o.IO.Out, out); werr != nil {
			return werr
		}
		if refused {
			return &cmdutil.ExitError{Code: cmdutil.ExitProblems, Err: err, Silent: true}
		}
		return nil
	}
	st := o.IO.StyleOut()
	if refused {
		return &cmdutil.ExitError{Code: cmdutil.ExitProblems, Err: err}
	}
	mark := st.OK()
	fmt.Fprintf(o.IO.Out, "%s %s\n", mark, out.Detail)
	return nil
}
