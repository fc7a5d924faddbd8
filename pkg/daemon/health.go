package daemon

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// StatusFunc returns the current snapshot. It must be cheap: the app polls
// and operators burst-test these routes; the daemon keeps the snapshot
// current instead of computing it per request.
type StatusFunc func() Status

// healthRoutes serves the health and status routes of the contract. None
// of them is rate limited.
type healthRoutes struct {
	status StatusFunc
	// cache serves /health and the dashboard from a snapshot
	// (statuscache.go); /ready and /readyz call status.
	cache *statusCache
	// access decides who may read the dashboard (httpaccess.go).
	access *statusAccess
}

func (h *healthRoutes) register(mux *http.ServeMux) {
	mux.HandleFunc("GET /health", h.health)
	mux.HandleFunc("GET /ready", h.ready)
	mux.HandleFunc("GET /healthz", h.healthz)
	mux.HandleFunc("GET /readyz", h.readyz)
	mux.HandleFunc("GET /api/status/dashboard", h.dashboard)
}

func ms(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

func secs(d time.Duration) int64 {
	if d < 0 {
		return 0
	}
	return int64(d / time.Second)
}

func counters(c Counters) (dedupe, history map[string]any) {
	return map[string]any{
			"wrote": c.DedupeWrote, "skipped": c.DedupeSkipped, "strongSkipped": c.DedupeStrongSkipped,
		}, map[string]any{
			"wrote": c.HistoryWrote, "skipped": c.HistorySkipped,
			"lastRunAt": ms(c.HistoryLastRunAt), "lastBatchCount": c.HistoryLastBatch,
		}
}

// warnings lists what an operator should look at although the service runs.
func (s *Status) warnings() []string {
	w := []string{}
	// /health is public: warnings name the cause, never a server path
	// (the dashboard, which needs access, shows the paths).
	if !s.SessionsDirWritable {
		if diskFull(s.SessionsError) {
			w = append(w, "sessions directory: disk full (no space left on device); free space on its file system")
		} else {
			w = append(w, "sessions directory is not writable")
		}
	}
	if !s.StoreReachable {
		w = append(w, "store unreachable: "+redactPaths(s.StoreError))
	}
	if s.LockRenewalError != "" {
		w = append(w, "lease renewal failing: "+s.LockRenewalError)
	}
	if hw := s.historyWarning(); hw != "" {
		w = append(w, hw)
	}
	if s.JournalDeadLetters > 0 {
		w = append(w, strconv.Itoa(s.JournalDeadLetters)+" journal entries refused by Firestore for good (dead letters): wactl journal dead-letters")
	}
	w = append(w, s.replicaWarnings()...) // session replica problems (replica_status.go)
	for _, a := range s.Accounts {
		if a.IsStale {
			w = append(w, "account "+a.ID+" is stale (connected, no event for too long)")
		}
		if a.RetryCount > 0 {
			w = append(w, retryWarning(a))
		}
	}
	return w
}

// healthBody is /health (legacy field names kept exactly).
type healthBody struct {
	meta
	OK                  bool        `json:"ok"`
	Status              string      `json:"status"`
	Service             string      `json:"service"`
	Version             string      `json:"version"`
	Commit              string      `json:"commit"`
	InstanceID          string      `json:"instanceId"`
	WAMode              string      `json:"waMode"`
	LockStatus          string      `json:"lockStatus"`
	LockHolder          string      `json:"lockHolder"`
	LockRemainingSec    int64       `json:"lockRemainingSec"`
	LockEpoch           int64       `json:"lockEpoch"`
	Uptime              int64       `json:"uptime"`
	Timestamp           jsonMillis  `json:"timestamp"`
	AccountsTotal       int         `json:"accounts_total"`
	Connected           int         `json:"connected"`
	NeedsQR             int         `json:"needs_qr"`
	SessionsDirWritable bool        `json:"sessions_dir_writable"`
	Dedupe              dedupeJSON  `json:"dedupe"`
	History             historyJSON `json:"history"`
	Store               storeJSON   `json:"store"`
	Warnings            []string    `json:"warnings"`
}

type dedupeJSON struct {
	Wrote         int64 `json:"wrote"`
	Skipped       int64 `json:"skipped"`
	StrongSkipped int64 `json:"strongSkipped"`
}

type historyJSON struct {
	Wrote          int64      `json:"wrote"`
	Skipped        int64      `json:"skipped"`
	LastRunAt      jsonMillis `json:"lastRunAt"`
	LastBatchCount int        `json:"lastBatchCount"`
	// The history queue (history_status.go): syncs waiting, syncs lost,
	// edits parked, history messages not recorded (all reasons).
	Queued      int   `json:"queued"`
	Lost        int   `json:"lost"`
	Parked      int   `json:"parked"`
	NotRecorded int64 `json:"notRecorded"`
}

type storeJSON struct {
	Backend          string `json:"backend"`
	Reachable        bool   `json:"reachable"`
	JournalBacklog   int    `json:"journalBacklog"`
	JournalOldestSec int64  `json:"journalOldestSec"`
	// JournalDeadLetters: entries Firestore refused for good, kept in the
	// journal (wactl journal dead-letters).
	JournalDeadLetters int `json:"journalDeadLetters"`
}

// newHealthBody renders a snapshot as /health and returns the HTTP status
// it answers with.
func newHealthBody(s *Status, b *healthBody) int {
	sum := s.Summary()
	warn := s.warnings()
	status, code := "ok", http.StatusOK
	if len(warn) > 0 {
		status = "degraded"
	}
	if !s.SessionsDirWritable {
		status, code = "error", http.StatusServiceUnavailable
	}
	t := &s.Totals
	*b = healthBody{
		OK: code == http.StatusOK, Status: status, Service: s.Service, Version: s.Version, Commit: s.Commit,
		InstanceID: s.InstanceID, WAMode: s.WAMode, LockStatus: s.LockStatus, LockHolder: s.LockHolder,
		LockRemainingSec: secs(s.LockRemaining), LockEpoch: s.LockEpoch, Uptime: secs(s.Now.Sub(s.StartedAt)),
		Timestamp: jsonMillis(s.Now), AccountsTotal: sum.Total, Connected: sum.Connected, NeedsQR: sum.NeedsQR,
		SessionsDirWritable: s.SessionsDirWritable,
		Dedupe:              dedupeJSON{t.DedupeWrote, t.DedupeSkipped, t.DedupeStrongSkipped},
		History: historyJSON{t.HistoryWrote, t.HistorySkipped, jsonMillis(t.HistoryLastRunAt), t.HistoryLastBatch,
			s.HistoryQueued, s.HistoryLost, s.HistoryParked, notRecorded(s.HistorySkipped)},
		Store:    storeJSON{s.StoreBackend, s.StoreReachable, s.JournalBacklog, secs(s.JournalOldest), s.JournalDeadLetters},
		Warnings: warn,
	}
	b.Success = code >= 200 && code < 300
	return code
}

// health answers from the cached snapshot, encoded when it was taken: a
// request splices in its id and writes (issue 7, issue 21).
func (h *healthRoutes) health(w http.ResponseWriter, r *http.Request) {
	p := h.cache.get()
	writeSpliced(w, r, p.healthCode, p.healthHead, p.tail)
}

func (h *healthRoutes) ready(w http.ResponseWriter, r *http.Request) {
	s := h.status()
	reason := "lease held"
	if s.WAMode != "active" {
		reason = s.PassiveReason
		if reason == "" {
			reason = "lease not held"
		}
	}
	WriteJSON(w, r, http.StatusOK, map[string]any{
		"ready":                s.WAMode == "active",
		"mode":                 s.WAMode,
		"reason":               reason,
		"instanceId":           s.InstanceID,
		"lockStatus":           s.LockStatus,
		"heldBy":               s.LockHolder,
		"lockExpiresInSeconds": secs(s.LockRemaining),
		"timestamp":            ms(s.Now),
	})
}

func (h *healthRoutes) healthz(w http.ResponseWriter, r *http.Request) {
	WriteJSON(w, r, http.StatusOK, map[string]any{"status": "ok"})
}

// readyz is for load balancers: ready when this instance can serve its
// routes (store reachable, sessions writable), ACTIVE or PASSIVE alike,
// since a PASSIVE instance answers reads and health.
func (h *healthRoutes) readyz(w http.ResponseWriter, r *http.Request) {
	s := h.status()
	ok := s.StoreReachable && s.SessionsDirWritable
	code := http.StatusOK
	if !ok {
		code = http.StatusServiceUnavailable
	}
	WriteJSON(w, r, code, map[string]any{"ready": ok, "mode": s.WAMode})
}

func (h *healthRoutes) dashboard(w http.ResponseWriter, r *http.Request) {
	if !h.access.allowed(r) {
		deny(w, r)
		return
	}
	flat := r.URL.Query().Get("view") == "flat"
	p := h.cache.get()
	// The answer depends on Accept-Encoding (statusgzip.go).
	w.Header()["Vary"] = varyEncoding
	if !flat && acceptsGzip(r) {
		if g, ok := p.dashboardGzip(); ok {
			writeGzipSpliced(w, r, http.StatusOK, g)
			return
		}
	}
	body := p.dashboardBody(flat)
	writeSpliced(w, r, http.StatusOK, body.head, body.tail)
}

// dashboard renders a snapshot as /api/status/dashboard (flat: the seed's
// original flat answer, where service is a word), without the fields
// WriteJSON adds.
func dashboard(s *Status, flat bool) map[string]any {
	sum := s.Summary()
	serviceStatus := "healthy"
	if len(s.warnings()) > 0 {
		serviceStatus = "degraded"
	}
	if flat {
		return map[string]any{
			"service": serviceStatus, "storageWritable": s.SessionsDirWritable, "total": sum.Total,
			"connected": sum.Connected, "needs_qr": sum.NeedsQR, "accounts_count": sum.Total,
		}
	}
	dedupe, history := counters(s.Totals)
	accounts := make([]map[string]any, 0, len(s.Accounts))
	for _, a := range s.Accounts {
		ad, ah := counters(a.Counters)
		ah["queued"], ah["lost"], ah["notRecordedByReason"] = a.HistoryQueued, a.HistoryLost, a.HistorySkipped
		accounts = append(accounts, map[string]any{
			"accountId":      a.ID,
			"name":           a.Name,
			"phone":          MaskPhone(a.Phone),
			"status":         ContractStatus(a.State),
			"state":          a.State,
			"lastEventAt":    ms(a.LastEventAt),
			"lastMessageAt":  ms(a.LastMessageAt),
			"reconnectCount": a.ReconnectCount,
			"needs_qr":       ContractStatus(a.State) == "needs_qr" || a.State == "logged_out",
			"hasDiskSession": a.HasDiskSession,
			"isStale":        a.IsStale,
			"leaseUntil":     ms(s.LeaseUntil),
			"lastError":      a.LastError,
			"bannedUntil":    ms(a.BannedUntil),
			"retryReason":    a.RetryReason,
			"nextRetryAt":    ms(a.NextRetryAt),
			"retryCount":     a.RetryCount,
			"dedupe":         ad,
			"history":        ah,
		})
	}
	return map[string]any{
		"timestamp": ms(s.Now),
		"service": map[string]any{
			"status": serviceStatus, "uptime": secs(s.Now.Sub(s.StartedAt)), "version": s.Version,
			"firestoreConnected": s.StoreBackend == "firestore" && s.StoreReachable,
			"waMode":             s.WAMode, "instanceId": s.InstanceID, "lockStatus": s.LockStatus,
			"lockHolder": s.LockHolder, "lockRemainingSec": secs(s.LockRemaining),
			"dedupeTotals": dedupe, "historyTotals": history,
		},
		"storage":  map[string]any{"path": s.SessionsPath, "writable": s.SessionsDirWritable, "totalAccounts": sum.Total},
		"replica":  s.Replica, // session replica problems per account (replica_status.go)
		"accounts": accounts,
		"summary": map[string]any{
			"connected": sum.Connected, "connecting": sum.Connecting, "disconnected": sum.Disconnected,
			"needs_qr": sum.NeedsQR, "total": sum.Total,
		},
		// The flat fields the seed audit's scripts read.
		"storageWritable": s.SessionsDirWritable,
		"total":           sum.Total,
		"connected":       sum.Connected,
		"needs_qr":        sum.NeedsQR,
		"accounts_count":  sum.Total,
	}
}

// diskFull reports whether an error text is a full file system's (ENOSPC,
// SQLITE_FULL), whoever wrote it.
func diskFull(msg string) bool {
	return strings.Contains(msg, "no space left on device") || strings.Contains(msg, "disk full") ||
		strings.Contains(msg, "database or disk is full")
}

// absPath matches absolute file paths inside error texts.
var absPath = regexp.MustCompile(`(^|[\s:(="'])/[^\s:)"',]+`)

// redactPaths replaces absolute paths in an error text with <path>.
func redactPaths(msg string) string {
	return absPath.ReplaceAllString(msg, "$1<path>")
}

// MaskPhone keeps the country code and the last two digits: enough for an
// operator to tell accounts apart, not a number to call.
func MaskPhone(p string) string {
	digits := strings.TrimPrefix(p, "+")
	if len(digits) < 6 {
		if digits == "" {
			return ""
		}
		return "+" + strings.Repeat("*", len(digits))
	}
	return "+" + digits[:2] + strings.Repeat("*", len(digits)-4) + digits[len(digits)-2:]
}
