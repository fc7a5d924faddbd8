package daemon

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// The history queue's figures as /health, the dashboard, /metrics and the
// systemd status show them: read by housekeeping (refreshHistory), served
// from the cache (fillHistory), so the routes stay free of I/O.

// refreshHistory reads the queue's counts into the cache.
func (m *Manager) refreshHistory(ctx context.Context) {
	s, err := m.HistoryStatus(ctx)
	if err != nil {
		return
	}
	h := m.histWorker()
	h.mu.Lock()
	h.cached = s
	h.mu.Unlock()
}

// fillHistory copies the cached figures into a status snapshot.
func (m *Manager) fillHistory(st *Status) {
	h := m.histWorker()
	h.mu.Lock()
	c := h.cached
	h.mu.Unlock()
	st.HistoryQueued, st.HistoryLost, st.HistoryParked, st.HistoryParkedDropped = c.Pending, c.Lost, c.Parked, c.Dropped
	st.HistoryLosses, st.HistorySkipped = c.Losses, c.Skipped
	for i := range st.Accounts {
		a := &st.Accounts[i]
		a.HistoryQueued, a.HistoryLost, a.HistorySkipped = c.PerAccountPending[a.ID], c.PerAccountLost[a.ID], c.PerAccountSkipped[a.ID]
	}
}

// notRecorded sums the skipped history messages over reasons.
func notRecorded(by map[string]int64) int64 {
	var n int64
	for _, v := range by {
		n += v
	}
	return n
}

// historyWarning names the lost history syncs for /health and the
// dashboard; "" when none.
func (s *Status) historyWarning() string {
	if s.HistoryLost == 0 {
		return ""
	}
	by := map[string]int{}
	for _, l := range s.HistoryLosses {
		by[l.Reason]++
	}
	var parts []string
	for r, n := range by {
		parts = append(parts, fmt.Sprintf("%d %s", n, r))
	}
	sort.Strings(parts)
	return fmt.Sprintf("%d history syncs lost (%s): see wactl doctor", s.HistoryLost, strings.Join(parts, ", "))
}

// historyCollector exports the history queue on /metrics.
type historyCollector struct {
	status                         StatusFunc
	queued, lost, parked, dropped  *prometheus.Desc
	skipped, accountLost, accountQ *prometheus.Desc
}

func newHistoryCollector(f StatusFunc) *historyCollector {
	return &historyCollector{
		status:      f,
		queued:      prometheus.NewDesc("wactl_history_queue_pending", "History-sync notifications accepted and not yet fully recorded.", nil, nil),
		lost:        prometheus.NewDesc("wactl_history_lost_total", "History-sync notifications given up (media gone or undecodable), by reason.", []string{"reason"}, nil),
		parked:      prometheus.NewDesc("wactl_edits_parked", "Edits and revokes kept until the message they change is recorded.", nil, nil),
		dropped:     prometheus.NewDesc("wactl_edits_parked_dropped_total", "Parked edits and revokes dropped at the bound since start.", nil, nil),
		skipped:     prometheus.NewDesc("wactl_history_not_recorded_total", "History messages not recorded, by reason.", []string{"account", "reason"}, nil),
		accountLost: prometheus.NewDesc("wactl_history_lost_by_account_total", "History-sync notifications given up, by account.", []string{"account"}, nil),
		accountQ:    prometheus.NewDesc("wactl_history_queue_pending_by_account", "History-sync notifications waiting, by account.", []string{"account"}, nil),
	}
}

func (c *historyCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.queued, c.lost, c.parked, c.dropped, c.skipped, c.accountLost, c.accountQ} {
		ch <- d
	}
}

func (c *historyCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.status()
	ch <- prometheus.MustNewConstMetric(c.queued, prometheus.GaugeValue, float64(s.HistoryQueued))
	ch <- prometheus.MustNewConstMetric(c.parked, prometheus.GaugeValue, float64(s.HistoryParked))
	ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(s.HistoryParkedDropped))
	byReason := map[string]int{"history_media_unavailable": 0, "history_undecodable": 0}
	for _, l := range s.HistoryLosses {
		byReason[l.Reason]++
	}
	for r, n := range byReason {
		ch <- prometheus.MustNewConstMetric(c.lost, prometheus.CounterValue, float64(n), r)
	}
	for _, a := range s.Accounts {
		ch <- prometheus.MustNewConstMetric(c.accountLost, prometheus.CounterValue, float64(a.HistoryLost), a.ID)
		ch <- prometheus.MustNewConstMetric(c.accountQ, prometheus.GaugeValue, float64(a.HistoryQueued), a.ID)
		for r, n := range a.HistorySkipped {
			ch <- prometheus.MustNewConstMetric(c.skipped, prometheus.CounterValue, float64(n), a.ID, r)
		}
	}
}
