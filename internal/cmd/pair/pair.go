// Package pair implements `wactl pair`: one-time pairing of an account from
// the operator's terminal, through the running daemon when there is one.
package pair

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store"

	"github.com/wactl/wactl/internal/cmdutil"
	"github.com/wactl/wactl/internal/iostreams"
	"github.com/wactl/wactl/internal/logging"
	"github.com/wactl/wactl/internal/wiring"
	"github.com/wactl/wactl/pkg/config"
	"github.com/wactl/wactl/pkg/daemon"
	"github.com/wactl/wactl/pkg/dedupe"
	"github.com/wactl/wactl/pkg/lock"
	"github.com/wactl/wactl/pkg/pair"
	"github.com/wactl/wactl/pkg/sessions"
	"github.com/wactl/wactl/pkg/wmlog"
)

// Options of `wactl pair`.
type Options struct {
	IO   *iostreams.IOStreams
	Load func() (*config.Loaded, error)
	// ConfigureClient is the test hook of the fake WhatsApp server.
	ConfigureClient func(*whatsmeow.Client)

	AccountID string
	Phone     string
	Name      string
	Code      bool
	Format    string // text | json
	Invert    bool
	QRPNG     string // write each code to this PNG file instead of drawing it
	QRText    bool   // draw the code on stderr even when it is not a terminal
	Force     bool
	Yes       bool
}

func New(f *cmdutil.Factory) *cobra.Command {
	o := &Options{IO: f.IO, ConfigureClient: f.ConfigureWAClient}
	cmd := &cobra.Command{
		Use:   "pair (--phone +NUMBER | --account ID) [--name NAME]",
		Short: "Link a WhatsApp account by QR code or pair code, once",
		Long: `Link a WhatsApp account to wactl. The session is saved in the sessions
directory and restored by 'wactl serve' after every restart: pair once.

The QR code is drawn on stderr; scan it with WhatsApp on the phone
(Settings › Linked devices › Link a device). It needs about 61 columns and
33 rows: a smaller terminal gets an explanation instead of a cut-off code.
--qr-png FILE writes it as an image instead; when stderr is not a terminal
it is not drawn unless --qr-text asks for it. With --code, type the printed
8-character code on the phone instead (Link with phone number). When --phone
is given, a scan by any other phone is refused and nothing is kept.

When a wactl daemon runs on this data dir, the pairing goes through it (the
daemon holds the accounts); otherwise wactl pairs locally, holding the data
dir's lock, so a daemon started meanwhile waits until the pairing is over
(and a data dir locked by a daemon not answering yet is refused). On a host where
wactl runs as a service, the data dir comes from /etc/wactl/config.yaml, or
from the running service (/run/wactl); its socket there lets the service
user and the members of its group in. Anyone else is told the command that
works (sudo -u wactl wactl pair …): wactl never pairs beside a service it
cannot reach, nor writes files into a data dir of another user.`,
		Example: `  wactl pair --phone +40712345678 --name "Shop"
  wactl pair --phone 0712345678 --code
  wactl pair --phone +40712345678 --qr-png /tmp/pair.png  # open the image and scan it
  wactl pair --account account_prod_0123abcd... --force
  wactl pair --phone +40712345678 --format json   # events as JSON lines on stdout`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Load = func() (*config.Loaded, error) { return f.Config(cmd) }
			return Run(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.AccountID, "account", "", "account id to pair")
	fl.StringVar(&o.Phone, "phone", "", "the account's phone number (+international, or national with a leading 0)")
	fl.StringVar(&o.Name, "name", "", "display name of a new account")
	fl.BoolVar(&o.Code, "code", false, "pair with an 8-character code typed on the phone instead of a QR code (needs --phone)")
	fl.StringVar(&o.Format, "format", "text", "output: text, or json (one event per line on stdout)")
	fl.BoolVar(&o.Invert, "invert", false, "draw the QR code for a light terminal background")
	fl.StringVar(&o.QRPNG, "qr-png", "", "write each QR code to this PNG file (mode 0600, removed at the end) instead of drawing it")
	fl.BoolVar(&o.QRText, "qr-text", false, "draw the QR code on stderr even when stderr is not a terminal")
	fl.BoolVar(&o.Force, "force", false, "unlink an already paired account and pair it again (asks first)")
	fl.BoolVarP(&o.Yes, "yes", "y", false, "do not ask for confirmation with --force")
	return cmd
}

// Run pairs the account and prints the outcome.
func Run(ctx context.Context, o *Options) error {
	if o.Format != "text" && o.Format != "json" {
		return cmdutil.FlagErrorf("--format %q: use text or json", o.Format)
	}
	if o.AccountID == "" && o.Phone == "" {
		return cmdutil.FlagErrorf("give --phone +NUMBER (or --account ID) of the account to pair")
	}
	l, err := o.Load()
	if err != nil {
		return err
	}
	cfg := &l.Config
	phone := ""
	if o.Phone != "" {
		phone, err = dedupe.CanonicalPhone(o.Phone, cfg.Sessions.DefaultCountryCode)
		if err == nil && (len(phone) < 7 || len(phone) > 16) {
			err = errors.New("an international number has 6 to 15 digits")
		}
		if err != nil {
			return cmdutil.FlagErrorf("--phone %q: %v; write it as +<country code><number>, e.g. +40712345678", o.Phone, err)
		}
	}
	if o.Code && phone == "" {
		return cmdutil.FlagErrorf("--code needs --phone: the code is tied to the phone number")
	}
	id := o.AccountID
	if id == "" {
		id = dedupe.AccountIDFromCanonical(cfg.Sessions.Namespace, phone)
	} else if err := sessions.ValidAccountID(id); err != nil {
		return cmdutil.FlagErrorf("--account: %v", err)
	}
	if o.Force && !o.Yes {
		if !o.IO.CanPrompt() {
			return cmdutil.FlagErrorf("--force unlinks the current session: confirm with --yes when not on a terminal")
		}
		ok, err := confirm(o.IO, fmt.Sprintf("Unlink the current session of %s and pair it again?", id))
		if err != nil {
			return err
		}
		if !ok {
			return &cmdutil.ExitError{Code: cmdutil.ExitFailure, Err: errors.New("not confirmed; nothing changed")}
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ui := newUI(ctx, o)
	defer ui.close()
	req := daemon.PairRequest{AccountID: id, Name: o.Name, Phone: phone, PhoneCode: o.Code, Force: o.Force}

	var outcome pair.Event
	admin, derr := daemon.DialAdmin(cfg.DataDir)
	var na *daemon.NotAllowedError
	switch {
	case derr == nil:
		ui.note("pairing through the running wactl daemon")
		existed := daemonHas(ctx, admin, id)
		outcome, err = admin.Pair(ctx, req, ui.event)
		if err != nil && outcome.Kind == "" {
			return err
		}
		if outcome.Outcome != pair.OutcomePaired && !existed {
			waitForgotten(admin, id)
		}
	case errors.As(derr, &na):
		// Not "no daemon": the service may run; never pair beside it.
		return notAllowed(o, na)
	default:
		outcome, err = pairLocally(ctx, o, cfg, req, ui)
		var re *sessions.RootError
		if errors.As(err, &re) && re.Owner != "" {
			return ownedByOther(o, cfg, re)
		}
		if err != nil && outcome.Kind == "" {
			return err
		}
	}
	return ui.finish(outcome)
}

// pairLocally pairs in this process: no daemon runs on this data dir.
func pairLocally(ctx context.Context, o *Options, cfg *config.Config, req daemon.PairRequest, ui *ui) (pair.Event, error) {
	log, err := logging.New(o.IO.ErrOut, logging.Options{Level: quietLevel(cfg.Log.Level), Format: cfg.Log.Format})
	if err != nil {
		return pair.Event{}, err
	}
	wmlog.ReplaceLibsignal(log)
	sess, err := wiring.Sessions(cfg, log)
	if err != nil {
		return pair.Event{}, fmt.Errorf("sessions directory: %w", err)
	}
	// The data dir's lock is the one every `wactl serve` takes before its
	// lease (pkg/lock, both backends): holding it while pairing means no
	// daemon is ACTIVE on this data dir until the pairing is over; one that
	// starts meanwhile waits, PASSIVE.
	dl, err := lock.TryLockDir(cfg.DataDir)
	if err != nil {
		if errors.Is(err, lock.ErrHeld) {
			return pair.Event{}, fmt.Errorf("data dir %s is in use by another wactl process (a daemon starting or stopping, or another wactl pair), "+
				"and no daemon answered on its admin socket: wait a few seconds and run wactl pair again (%w)", cfg.DataDir, err)
		}
		return pair.Event{}, fmt.Errorf("lock the data dir: %w", err)
	}
	defer dl.Unlock()
	_, err = sess.Create(sessions.NewAccount{ID: req.AccountID, Name: req.Name, Phone: req.Phone})
	created := err == nil
	if err != nil && !errors.Is(err, sessions.ErrAccountExists) {
		return pair.Event{}, err
	}
	var outcome pair.Event
	_, perr := pair.PairAccount(ctx, sess, req.AccountID, pair.AccountOptions{
		Options: pair.Options{ExpectedPhone: req.Phone, PhoneCode: req.PhoneCode, Logger: log,
			Events: func(e pair.Event) {
				if e.Kind == pair.KindOutcome {
					outcome = e
				}
				ui.event(e)
			}},
		Force: req.Force,
		NewClient: func(dev *store.Device) *whatsmeow.Client {
			cli := whatsmeow.NewClient(dev, wmlog.New(log, "Client", wmlog.Options{}))
			if o.ConfigureClient != nil {
				o.ConfigureClient(cli)
			}
			return cli
		},
	})
	// A fresh account that never paired leaves nothing behind: Ctrl-C,
	// expiry or a refused phone must not leave a half-made account.
	if created && outcome.Outcome != pair.OutcomePaired {
		if _, err := sess.Remove(req.AccountID, sessions.RemoveOptions{Purge: true}); err != nil {
			log.Warn("could not remove the unpaired account", "account", req.AccountID, "err", err)
		}
	}
	return outcome, perr
}

// quietLevel keeps whatsmeow's chatter off the operator's screen unless
// debugging was asked for.
func quietLevel(level string) string {
	if level == "debug" {
		return level
	}
	return "warn"
}
