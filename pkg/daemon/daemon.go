// Package daemon is `wactl serve`: it keeps WhatsApp accounts connected
// while this instance holds the lease, records their messages, and serves
// health, status and metrics over HTTP.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"go.mau.fi/whatsmeow"

	"github.com/wactl/wactl/pkg/lock"
	"github.com/wactl/wactl/pkg/sessions"
	"github.com/wactl/wactl/pkg/store"
)

// Options of Run. Everything is constructed by the caller (the serve
// command) from configuration; the daemon imports no configuration code.
type Options struct {
	Addr     string       // HTTP listen address
	Listener net.Listener // used instead of Addr when set (tests)

	InstanceID, Service, Version, Commit string

	Sessions     *sessions.Store
	Store        store.Store
	StoreBackend string // embedded | firestore
	// NewLock builds the lease with the daemon's callbacks.
	NewLock func(lock.Callbacks) (lock.Lock, error)

	Log      *slog.Logger
	Notifier Notifier
	Now      func() time.Time

	StaleAfter      time.Duration
	ConfigureClient func(*whatsmeow.Client) // tests: the fake WhatsApp server
	// ShutdownTimeout bounds the whole shutdown (systemd allows 30 s).
	ShutdownTimeout time.Duration
	// Watchdog is systemd's WatchdogSec (0: no pings).
	Watchdog time.Duration
	// Register adds the app's API routes.
	Register func(mux *http.ServeMux, d *Daemon)
	// Authorized decides whether a remote caller may read status routes.
	Authorized func(*http.Request) bool
	// OnListening is told the bound address (tests, logs).
	OnListening func(addr string)
	// AdminSocket is the path of the local admin socket (pairing through
	// the daemon); empty disables it.
	AdminSocket string
	// MaxConns caps the HTTP connections in general use (0: 1024, and
	// always under the fd limit); a few more are reserved for health.
	MaxConns int
	// HistoryQueue is the durable history-sync queue file (pkg/histq);
	// empty: beside the sessions directory. HistoryPolicy tunes its retries.
	HistoryQueue  string
	HistoryPolicy HistoryPolicy
	// StatusToken and TrustedProxies decide who may read the status
	// routes besides a direct loopback caller (HandlerOptions).
	StatusToken    string
	TrustedProxies []netip.Prefix
	// Replica, when set, keeps an encrypted copy of each session in
	// Firestore and restores from it on gaining the lease (replica.go).
	Replica *ReplicaOptions
}

// Daemon is a running `wactl serve`.
type Daemon struct {
	o       Options
	log     *slog.Logger
	mgr     *Manager
	lk      lock.Lock
	started time.Time

	mu          sync.Mutex
	writable    bool
	sessErr     string
	health      store.Health
	totals      Counters
	perAccount  map[string]Counters
	httpHealthy bool
	admin       *adminServer
	adminErr    string
	replica     *replicaSync
}

// ensureAdmin binds the admin socket if it is not bound yet. A second
// daemon on the same data dir finds the first one's socket alive, runs
// without one, and takes the socket over once the first is gone.
func (d *Daemon) ensureAdmin() {
	if d.o.AdminSocket == "" {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.admin != nil {
		return
	}
	a, err := d.startAdmin(d.o.AdminSocket)
	if err != nil {
		if err.Error() != d.adminErr {
			d.log.Warn("admin socket not available; will retry", "err", err)
			d.adminErr = err.Error()
		}
		return
	}
	d.admin, d.adminErr = a, ""
}

// Manager gives the API access to accounts.
func (d *Daemon) Manager() *Manager { return d.mgr }

// Lock gives the API the lease (for the PASSIVE check and fencing).
func (d *Daemon) Lock() lock.Lock { return d.lk }

// Run serves until ctx ends, then shuts down in order: stop accepting
// requests, disconnect WhatsApp, write the final states and counters while
// the lease is held, release the lease, flush the store.
func Run(ctx context.Context, o Options) error {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Notifier == nil {
		o.Notifier = SystemdNotifier{Log: o.Log}
	}
	if o.ShutdownTimeout == 0 {
		o.ShutdownTimeout = 10 * time.Second
	}
	d := &Daemon{o: o, log: o.Log, started: o.Now(), perAccount: map[string]Counters{}}

	var lk lock.Lock
	d.mgr = NewManager(ManagerOptions{
		Sessions: o.Sessions, Store: o.Store, Log: o.Log, Now: o.Now, StaleAfter: o.StaleAfter,
		ConfigureClient: o.ConfigureClient,
		StreamReplaced:  func(detail string) { lk.StreamReplaced(detail) },
		Fence:           func() (int64, bool) { return lk.Fence() },
		Lease:           func() lock.Status { return lk.Status() }, // connect.go: a run-out lease connects nothing
		Worker: store.Worker{Service: o.Service, InstanceID: o.InstanceID, Version: o.Version,
			Commit: o.Commit, BootTs: d.started},
	})
	if err := d.mgr.OpenHistory(o.HistoryQueue, o.HistoryPolicy); err != nil {
		return fmt.Errorf("history queue: %w", err)
	}
	defer d.mgr.CloseHistory()
	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRun()
	lk, err := o.NewLock(lock.Callbacks{
		// The lease goroutine must not wait for WhatsApp: connect in the
		// background.
		OnActive: func(epoch int64) {
			d.log.Info("lease gained: ACTIVE", "epoch", epoch)
			// With the replica: restore first, in the background (replica.go).
			d.activate(runCtx, epoch)
		},
		// Returns only when every client is disconnected.
		OnPassive: func(reason string) { d.cancelRestore(); d.mgr.Deactivate(reason) },
	})
	if err != nil {
		return fmt.Errorf("lease: %w", err)
	}
	d.lk = lk
	d.startReplica(runCtx)
	if err := d.mgr.Refresh(ctx); err != nil {
		d.log.Warn("cannot list accounts on disk", "err", err)
	}
	d.refresh(ctx)

	ln := o.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", o.Addr); err != nil {
			return fmt.Errorf("listen on %s: %w (is another process using the port? set http.port or PORT)", o.Addr, err)
		}
	}
	srv := newHTTPServer(NewHandler(HandlerOptions{Status: d.Status, Authorized: o.Authorized,
		StatusMaxAge: StatusMaxAge, StatusVersion: d.mgr.statusVersion, // statuscache.go
		StatusToken: o.StatusToken, TrustedProxies: o.TrustedProxies, Register: func(mux *http.ServeMux) {
			if o.Register != nil {
				o.Register(mux, d)
			}
		}}), o.Log)
	maxConns := connBudget(o.MaxConns)
	ln = newLimitListener(ln, maxConns, o.Log)
	d.ensureAdmin()
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	d.log.Info("listening", "addr", ln.Addr().String(), "instance", o.InstanceID, "max_connections", maxConns)
	if o.OnListening != nil {
		o.OnListening(ln.Addr().String())
	}
	o.Notifier.Notify("READY=1")

	lockDone := make(chan error, 1)
	lockCtx, stopLock := context.WithCancel(runCtx)
	defer stopLock()
	go func() { lockDone <- lk.Run(lockCtx) }()

	go d.housekeeping(runCtx, ln.Addr().String())

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		runErr = fmt.Errorf("http server: %w", err)
	case err := <-lockDone:
		if err != nil {
			runErr = fmt.Errorf("lease: %w", err)
		}
		lockDone <- nil
	}
	d.mu.Lock()
	admin := d.admin
	d.admin = nil
	d.mu.Unlock()
	if admin != nil {
		admin.close()
	}
	return errors.Join(runErr, d.shutdown(srv, stopLock, lockDone, stopRun))
}

// shutdown runs the stop sequence within ShutdownTimeout.
func (d *Daemon) shutdown(srv *http.Server, stopLock context.CancelFunc, lockDone chan error, stopRun context.CancelFunc) error {
	d.o.Notifier.Notify("STOPPING=1")
	d.log.Info("shutting down")
	deadline := time.Now().Add(d.o.ShutdownTimeout)
	hctx, cancel := context.WithDeadline(context.Background(), deadline.Add(-d.o.ShutdownTimeout/2))
	_ = srv.Shutdown(hctx)
	cancel()

	// Step down while the lease is still held (final.go): every client is
	// disconnected, then the session copies, the accounts' final states and
	// the counters are written under our epoch; only then does the lease
	// step down (finding nothing connected) and release, so the next
	// holder never overlaps with us and no fenced write is refused.
	d.cancelRestore()
	d.mgr.stopForShutdown()
	d.finalReplica(deadline)
	// Bounded on its own too: a write Firestore does not take now (an
	// outage, a document another process's dead transaction still locks)
	// must not eat the time the lease release needs; what misses stays in
	// the journal, or in memory for the counters, as final.go says.
	d.finalWrites(time.Now().Add(min(time.Until(deadline)/3, 5*time.Second)))
	stopLock()
	var errs []error
	select {
	case err := <-lockDone:
		if err != nil {
			errs = append(errs, fmt.Errorf("lease release: %w", err))
		}
	case <-time.After(time.Until(deadline) / 2):
		errs = append(errs, errors.New("lease release timed out; the lease expires by itself"))
		d.mgr.Deactivate("shutdown")
	}
	d.mgr.Close()
	stopRun()

	fctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if err := d.o.Store.Flush(fctx); err != nil {
		errs = append(errs, fmt.Errorf("store flush: %w (unshipped messages stay in the journal for the next start)", err))
	}
	d.log.Info("stopped")
	return errors.Join(errs...)
}

// housekeeping refreshes the cached parts of the status, tells systemd the
// status line, and pings its watchdog while the store and the HTTP loop are
// healthy (not WhatsApp: a WhatsApp outage is not fixed by a restart).
func (d *Daemon) housekeeping(ctx context.Context, addr string) {
	every := 5 * time.Second
	if d.o.Watchdog > 0 {
		every = min(every, d.o.Watchdog/3)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	client := &http.Client{Timeout: 2 * time.Second}
	lastLine := ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		d.refresh(ctx)
		d.ensureAdmin()
		if line := statusLine(d.Status()); line != lastLine {
			d.o.Notifier.Notify("STATUS=" + line)
			lastLine = line
		}
		healthy := d.probeHTTP(client, addr)
		d.mu.Lock()
		d.httpHealthy = healthy
		storeOK := d.health.Reachable || d.health.Backend == "firestore" // the journal keeps Firestore outages safe
		d.mu.Unlock()
		if d.o.Watchdog > 0 && healthy && storeOK {
			d.o.Notifier.Notify("WATCHDOG=1")
		}
	}
}

func (d *Daemon) probeHTTP(c *http.Client, addr string) bool {
	resp, err := c.Get("http://" + addr + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// refresh updates what costs I/O: the sessions probe, store health and the
// persisted counters.
func (d *Daemon) refresh(ctx context.Context) {
	perr := d.o.Sessions.Probe()
	writable, sessErr := perr == nil, ""
	if perr != nil {
		sessErr = perr.Error()
	}
	hctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	h := d.o.Store.Health(hctx)
	d.mgr.refreshHistory(hctx)
	accts, _ := d.mgr.Snapshot()
	per := make(map[string]Counters, len(accts))
	var total Counters
	for _, a := range accts {
		c, err := d.o.Store.Counters(hctx, a.ID)
		if err != nil {
			continue
		}
		pc := c
		per[a.ID] = pc
		total.DedupeWrote += pc.DedupeWrote
		total.DedupeSkipped += pc.DedupeSkipped
		total.DedupeStrongSkipped += pc.DedupeStrongSkipped
		total.HistoryWrote += pc.HistoryWrote
		total.HistorySkipped += pc.HistorySkipped
		if pc.HistoryLastRunAt.After(total.HistoryLastRunAt) {
			total.HistoryLastRunAt, total.HistoryLastBatch = pc.HistoryLastRunAt, pc.HistoryLastBatch
		}
	}
	d.mu.Lock()
	d.writable, d.sessErr, d.health, d.totals, d.perAccount = writable, sessErr, h, total, per
	d.mu.Unlock()
}

// Status is the current snapshot (cheap: no I/O).
func (d *Daemon) Status() Status {
	ls := d.lk.Status()
	accts, boot := d.mgr.Snapshot()
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := range accts {
		accts[i].Counters = d.perAccount[accts[i].ID]
	}
	remaining := time.Duration(ls.RemainingSec * float64(time.Second))
	st := Status{
		Now: d.o.Now(), StartedAt: d.started, Service: d.o.Service, Version: d.o.Version, Commit: d.o.Commit,
		InstanceID: d.o.InstanceID, WAMode: string(ls.WAMode), LockStatus: string(ls.LockStatus),
		LockHolder: ls.Holder.InstanceID, LockRemaining: remaining, LeaseUntil: ls.LeaseUntil, LockEpoch: ls.Epoch,
		PassiveReason: ls.Reason, LockRenewalError: ls.LastRenewalError,
		SessionsPath: d.o.Sessions.Root(), SessionsDirWritable: d.writable, SessionsError: d.sessErr,
		StoreBackend: d.o.StoreBackend, StoreReachable: d.health.Reachable, StoreError: d.health.LastError,
		JournalBacklog: d.health.JournalBacklog, JournalOldest: d.health.JournalOldest, JournalDeadLetters: d.health.JournalDeadLetters,
		Accounts: accts, Totals: d.totals, Boot: boot,
	}
	d.mgr.fillHistory(&st)
	d.fillReplica(&st)
	return st
}
