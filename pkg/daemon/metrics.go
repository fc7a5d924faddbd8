package daemon

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// statusCollector turns the status snapshot into metrics at scrape time, so
// metrics and /health can never disagree.
type statusCollector struct {
	status StatusFunc

	accounts, leaseHeld, leaseEpoch, backlog, backlogAge *prometheus.Desc
	recorded, reconnects, sessionsWritable               *prometheus.Desc
	deadLetters                                          *prometheus.Desc
}

func newStatusCollector(f StatusFunc) *statusCollector {
	return &statusCollector{
		status:           f,
		accounts:         prometheus.NewDesc("wactl_accounts", "Accounts by state.", []string{"state"}, nil),
		leaseHeld:        prometheus.NewDesc("wactl_lease_held", "1 when this instance holds the lease (ACTIVE).", nil, nil),
		leaseEpoch:       prometheus.NewDesc("wactl_lease_epoch", "Fencing epoch of the lease as last seen.", nil, nil),
		backlog:          prometheus.NewDesc("wactl_journal_backlog_messages", "Messages committed locally, not yet in Firestore.", nil, nil),
		backlogAge:       prometheus.NewDesc("wactl_journal_oldest_seconds", "Age of the oldest unshipped journal entry.", nil, nil),
		recorded:         prometheus.NewDesc("wactl_messages_total", "Messages handled by the store since start, by outcome.", []string{"outcome"}, nil),
		reconnects:       prometheus.NewDesc("wactl_reconnects_total", "WhatsApp reconnects since start.", []string{"account"}, nil),
		sessionsWritable: prometheus.NewDesc("wactl_sessions_dir_writable", "1 when the sessions directory is writable.", nil, nil),
		deadLetters:      prometheus.NewDesc("wactl_journal_dead_letters", "Journal entries Firestore refused for good, kept for wactl journal retry.", nil, nil),
	}
}

func (c *statusCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.accounts, c.leaseHeld, c.leaseEpoch, c.backlog, c.backlogAge, c.recorded, c.reconnects, c.sessionsWritable, c.deadLetters} {
		ch <- d
	}
}

var allStates = []string{"connecting", "qr_ready", "connected", "reconnecting", "needs_qr", "logged_out",
	"replaced", "banned", "client_outdated", "stopped", "passive"}

func (c *statusCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.status()
	byState := map[string]int{}
	for _, st := range allStates {
		byState[st] = 0
	}
	for _, a := range s.Accounts {
		byState[a.State]++
		ch <- prometheus.MustNewConstMetric(c.reconnects, prometheus.CounterValue, float64(a.ReconnectCount), a.ID)
	}
	for st, n := range byState {
		ch <- prometheus.MustNewConstMetric(c.accounts, prometheus.GaugeValue, float64(n), st)
	}
	ch <- prometheus.MustNewConstMetric(c.leaseHeld, prometheus.GaugeValue, b2f(s.WAMode == "active"))
	ch <- prometheus.MustNewConstMetric(c.leaseEpoch, prometheus.GaugeValue, float64(s.LockEpoch))
	ch <- prometheus.MustNewConstMetric(c.backlog, prometheus.GaugeValue, float64(s.JournalBacklog))
	ch <- prometheus.MustNewConstMetric(c.backlogAge, prometheus.GaugeValue, s.JournalOldest.Seconds())
	ch <- prometheus.MustNewConstMetric(c.deadLetters, prometheus.GaugeValue, float64(s.JournalDeadLetters))
	ch <- prometheus.MustNewConstMetric(c.sessionsWritable, prometheus.GaugeValue, b2f(s.SessionsDirWritable))
	for outcome, n := range map[string]int64{
		"wrote": s.Boot.DedupeWrote, "skipped": s.Boot.DedupeSkipped, "strong_skipped": s.Boot.DedupeStrongSkipped,
		"history_wrote": s.Boot.HistoryWrote, "history_skipped": s.Boot.HistorySkipped,
	} {
		ch <- prometheus.MustNewConstMetric(c.recorded, prometheus.CounterValue, float64(n), outcome)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// httpMetrics measures request latency per route pattern (not per raw
// path, which would explode label cardinality with account ids).
type httpMetrics struct {
	latency *prometheus.HistogramVec
	// observers caches the curried histogram of each route and code, so a
	// request costs one map lookup instead of hashing label values. The map
	// is copied on write: routes and codes are few and settle after the
	// first requests, and readers then take no lock and allocate nothing.
	observers atomic.Pointer[map[routeCode]prometheus.Observer]
	mu        sync.Mutex // serialises the copy on write
}

type routeCode struct {
	route string
	code  int
}

func (m *httpMetrics) observer(route string, code int) prometheus.Observer {
	key := routeCode{route, code}
	if obs := m.observers.Load(); obs != nil {
		if o, ok := (*obs)[key]; ok {
			return o
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.observers.Load()
	if old != nil {
		if o, ok := (*old)[key]; ok {
			return o
		}
	}
	o := m.latency.WithLabelValues(route, strconv.Itoa(code))
	next := make(map[routeCode]prometheus.Observer, 1+lenOf(old))
	if old != nil {
		for k, v := range *old {
			next[k] = v
		}
	}
	next[key] = o
	m.observers.Store(&next)
	return o
}

func lenOf(m *map[routeCode]prometheus.Observer) int {
	if m == nil {
		return 0
	}
	return len(*m)
}

func newHTTPMetrics() *httpMetrics {
	return &httpMetrics{latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "wactl_http_request_duration_seconds",
		Help:    "HTTP request latency by route and status code.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"route", "code"})}
}

// wrap gives every request its id (assignRequestID) and measures it. Both
// share one allocation per request: the exchange below.
func (m *httpMetrics) wrap(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		x := &exchange{ResponseWriter: w, code: http.StatusOK}
		assignRequestID(w, r, &x.ids)
		mux.ServeHTTP(x, r)
		pattern := r.Pattern // set by the mux on this request
		if pattern == "" {
			pattern = "unmatched"
		}
		m.observer(pattern, x.code).Observe(time.Since(start).Seconds())
	})
}

// exchange is the per-request state of the middleware: the ResponseWriter
// that records the status code, and the backing store of the request id
// headers. It is not pooled: the header maps keep pointing into ids until
// the server has written the response, after the handler returns.
type exchange struct {
	http.ResponseWriter
	code int
	ids  [2]string
}

func (x *exchange) WriteHeader(code int) {
	x.code = code
	x.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the server's writer (flush,
// deadlines, hijack) through the recorder.
func (x *exchange) Unwrap() http.ResponseWriter { return x.ResponseWriter }

// newRegistry is a private registry (not the global default) holding the
// status collector, HTTP metrics and the Go runtime and process collectors.
func newRegistry(status StatusFunc, hm *httpMetrics) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newStatusCollector(status), newHistoryCollector(status), hm.latency, liveMessageDelay, newIngestCollector(),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

func metricsHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// liveMessageDelay is the time from a live message's WhatsApp timestamp
// (whole seconds) to its being durable in the store. whatsmeow hands an
// account's messages to the handler one at a time from a queue (2,048
// nodes; beyond that it parks each node in a goroutine of its own), and a
// message is acknowledged only once recorded, so when the store falls
// behind this delay grows while nothing is lost: it is the backpressure.
// Package-level because every client observes it; each registry only
// reads it.
var liveMessageDelay = prometheus.NewHistogram(prometheus.HistogramOpts{
	Name:    "wactl_live_message_delay_seconds",
	Help:    "Time from a live message's WhatsApp timestamp (whole seconds) to its being recorded.",
	Buckets: []float64{1, 2, 5, 10, 30, 60, 300, 1800},
})

// observeLiveDelay records one live message made durable at now.
func observeLiveDelay(sent, now time.Time) {
	if !sent.IsZero() {
		liveMessageDelay.Observe(max(now.Sub(sent).Seconds(), 0))
	}
}
