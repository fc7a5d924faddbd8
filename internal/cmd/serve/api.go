package serve

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/wactl/wactl/pkg/api"
	"github.com/wactl/wactl/pkg/config"
	"github.com/wactl/wactl/pkg/daemon"
	"github.com/wactl/wactl/pkg/store"
)

// appAPI adds the app's routes and the outbox worker to the daemon once it
// exists. Without a way to authenticate callers (no Firebase project, no
// service token) every /api/whatsapp route answers 503 auth_not_configured
// naming what to set, and the log says so; health still works.
type appAPI struct {
	ctx context.Context
	cfg *config.Config
	st  store.Store
	log *slog.Logger
	a   *api.API
}

func newAppAPI(ctx context.Context, cfg *config.Config, st store.Store, log *slog.Logger) *appAPI {
	p := &appAPI{ctx: ctx, cfg: cfg, st: st, log: log}
	if !cfg.API.Enabled() {
		log.Error(api.NoAuthMessage)
	} else {
		log.Info(p.options().AuthSummary())
	}
	return p
}

func (p *appAPI) options() api.Options {
	c := p.cfg.API
	proxies, _ := config.ParseTrustedProxies(p.cfg.HTTP.TrustedProxies) // validated before serve starts
	return api.Options{
		ProjectID: c.FirebaseProjectID, KeyURL: c.FirebaseKeyURL, ServiceToken: c.ServiceToken,
		AdminUIDs: c.AdminUIDs, AdminEmails: c.AdminEmails, AdminClaim: c.AdminClaim,
		AllowedUIDs: c.AllowedUIDs, AllowedEmails: c.AllowedEmails, MaxAccounts: c.MaxAccounts,
		CORSOrigins: c.CORSOrigins, RatePerMinute: c.RatePerMinute, RateBurst: c.RateBurst,
		MaxBodyBytes: int64(c.MaxBodyBytes), Namespace: p.cfg.Sessions.Namespace, CountryCode: p.cfg.Sessions.DefaultCountryCode,
		AllowAnonymous: c.AllowAnonymous, AllowUnverifiedEmail: c.AllowUnverifiedEmail, AuthFailuresPerMinute: c.AuthFailuresPerMinute,
		TrustedProxies: proxies,
	}
}

// register is daemon.Options.Register: it runs once, before the daemon
// serves, with the running daemon.
func (p *appAPI) register(mux *http.ServeMux, d *daemon.Daemon) {
	if !p.cfg.API.Enabled() {
		api.RegisterUnconfigured(mux)
		return
	}
	a, err := api.New(p.options(), api.Deps{
		WhatsApp: d.Manager(), Store: p.st, Status: d.Status, InstanceID: p.cfg.InstanceID, Log: p.log,
	})
	if err != nil {
		p.log.Error("the app's API is off", "err", err)
		return
	}
	p.a = a
	a.Register(mux)
	w := a.OutboxWorker(api.WorkerOptions{
		Claimer: p.cfg.InstanceID, Fence: d.Lock().Fence,
		Interval: p.cfg.Outbox.Interval, Lease: p.cfg.Outbox.Lease, MaxAttempts: p.cfg.Outbox.MaxAttempts,
	})
	go func() {
		if err := w.Run(p.ctx); err != nil && p.ctx.Err() == nil {
			p.log.Error("outbox worker stopped", "err", err)
		}
	}()
}

// authorized lets API callers read the dashboard and metrics from outside
// this host.
func (p *appAPI) authorized(r *http.Request) bool {
	return p.a != nil && p.a.Authorized(r)
}
