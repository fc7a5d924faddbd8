// Package serve implements `wactl serve`, the daemon systemd runs.
package serve

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"
	"github.com/spf13/cobra"
	"go.mau.fi/whatsmeow"

	"github.com/wactl/wactl/internal/buildinfo"
	"github.com/wactl/wactl/internal/cmdutil"
	"github.com/wactl/wactl/internal/wiring"
	"github.com/wactl/wactl/pkg/config"
	"github.com/wactl/wactl/pkg/daemon"
	"github.com/wactl/wactl/pkg/histq"
	"github.com/wactl/wactl/pkg/lock"
	"github.com/wactl/wactl/pkg/wmlog"
)

// Options of `wactl serve`.
type Options struct {
	Load   func() (*config.Loaded, error)
	Logger func(*config.Config) (*slog.Logger, error)
	// ConfigureClient is a test hook (the fake WhatsApp server); nil in the
	// shipped binary.
	ConfigureClient func(*whatsmeow.Client)
	Notifier        daemon.Notifier
	OnListening     func(addr string)
}

func init() {
	cmdutil.BindConfigFlag("host", "http.host")
	cmdutil.BindConfigFlag("port", "http.port")
}

func New(f *cmdutil.Factory) *cobra.Command {
	o := &Options{Logger: f.Logger, ConfigureClient: f.ConfigureWAClient}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the daemon: keep accounts connected, record messages, serve the API",
		Long: `Run the daemon that systemd starts (see configs/wactl.service).

It binds the HTTP listener and tells systemd it is ready at once, then
takes the lease: while it holds it (ACTIVE) it restores every paired account
from the sessions directory and keeps it connected; otherwise (PASSIVE) it
serves reads and health and waits. SIGINT or SIGTERM stop it in order:
requests, WhatsApp connections, the lease (released so a restart is ACTIVE at
once), then the store. A clean stop exits 0.

With no configuration it runs on this machine only: data in
$STATE_DIRECTORY, else the running wactl service's (/run/wactl/data_dir),
else ./wactl-data; an embedded SQLite store, a file lock, HTTP on
127.0.0.1:8080.

Exit codes:
  0    stopped cleanly (also after SIGINT or SIGTERM)
  1    failure (systemd restarts the unit)
  2    bad flags or arguments
  78   invalid configuration (the unit does not restart on it)`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Load = func() (*config.Loaded, error) { return f.Config(cmd) }
			return Run(cmd.Context(), o)
		},
	}
	cmd.Flags().String("host", "", "address to listen on (default 127.0.0.1; http.host)")
	cmd.Flags().Int("port", 0, "port to listen on (default 8080; http.port, PORT)")
	return cmd
}

// Run starts the daemon and returns when ctx ends and shutdown is done.
func Run(ctx context.Context, o *Options) error {
	l, err := o.Load()
	if err != nil {
		return err
	}
	cfg := &l.Config
	log, err := o.Logger(cfg)
	if err != nil {
		return err
	}
	// libsignal prints to stdout by default; route it through slog.
	wmlog.ReplaceLibsignal(log)

	if err := daemon.ApplyWAVersion(cfg.WhatsApp.VersionOverride); err != nil {
		return err
	}
	tightenPermissions(cfg, log)
	proxies, err := config.ParseTrustedProxies(cfg.HTTP.TrustedProxies)
	if err != nil {
		return err // validated by Load already
	}
	sess, err := wiring.Sessions(cfg, log)
	if err != nil {
		return fmt.Errorf("sessions directory: %w", err)
	}
	client, err := wiring.Firestore(ctx, cfg)
	if err != nil {
		return err
	}
	if client != nil {
		defer client.Close()
	}
	rep, err := replicaOptions(cfg, client)
	if err != nil {
		return err
	}
	notifier := o.Notifier
	if notifier == nil {
		notifier = daemon.SystemdNotifier{Log: log}
	}
	stopExtending := extendStart(notifier, startExtendEvery, startExtendStep, startExtendMax)
	fence := new(lock.FenceRef) // the store is fenced by the lease built below
	st, err := wiring.Store(ctx, cfg, client, log, fence.Fence)
	stopExtending()
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	defer st.Close()

	watchdog, _ := sd.SdWatchdogEnabled(false)
	bi := buildinfo.Get()
	app := newAppAPI(ctx, cfg, st, log)
	onListening := o.OnListening
	if cfg.Daemon.TrimStartupMemory {
		onListening = trimAfterListening(ctx, log, onListening)
	}
	log.Info("starting", "version", bi.Version, "instance", cfg.InstanceID, "store", cfg.Store.Backend,
		"lock", cfg.LockBackend(), "sessions", cfg.Sessions.Path)
	return daemon.Run(ctx, daemon.Options{
		Addr: cfg.ListenAddr(), InstanceID: cfg.InstanceID, Service: "wactl", Version: bi.Version, Commit: bi.Commit,
		Sessions: sess, Store: st, StoreBackend: cfg.Store.Backend,
		NewLock: func(cb lock.Callbacks) (lock.Lock, error) {
			lk, err := wiring.Lock(cfg, client, cb, log)
			if err == nil {
				fence.Set(lk)
			}
			return lk, err
		},
		Log: log, Notifier: notifier, ConfigureClient: o.ConfigureClient,
		AdminSocket:  filepath.Join(cfg.DataDir, daemon.AdminSocketName),
		HistoryQueue: filepath.Join(cfg.DataDir, histq.FileName),
		StaleAfter:   cfg.WhatsApp.StaleAfter,
		Register:     app.register,
		Authorized:   app.authorized, ShutdownTimeout: 10 * time.Second, Watchdog: watchdog,
		StatusToken: cfg.HTTP.StatusToken, TrustedProxies: proxies,
		OnListening: onListening, Replica: rep,
	})
}
