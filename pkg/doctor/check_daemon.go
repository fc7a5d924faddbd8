package doctor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// requestTimeout bounds one daemon request.
const requestTimeout = 2 * time.Second

// getJSON fetches path and decodes a JSON object.
func (env *Env) getJSON(ctx context.Context, path string) (int, map[string]any, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, env.BaseURL+path, nil)
	if err != nil {
		return 0, nil, err
	}
	if env.Config != nil && env.Config.HTTP.StatusToken != "" { // status routes behind a listed proxy
		req.Header.Set("Authorization", "Bearer "+env.Config.HTTP.StatusToken)
	}
	resp, err := env.HTTP.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return resp.StatusCode, nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return resp.StatusCode, nil, fmt.Errorf("%s: not JSON: %w", path, err)
	}
	return resp.StatusCode, m, nil
}

// unreachable says whether err means nothing answers (as opposed to a
// wrong answer).
func unreachable(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), "no such host"))
}

func (env *Env) daemonStartFix(ctx context.Context) Fix {
	if env.systemd(ctx).Loaded() {
		return Fix{Summary: "start the daemon and read why it is down", Commands: []string{
			"sudo systemctl start " + env.Unit, "sudo journalctl -u " + env.Unit + " -n 50 --no-pager"}}
	}
	// No unit to start: systemctl start would only fail.
	return Fix{Summary: "no " + env.Unit + ".service is installed: install the unit (see systemd.service), or run the daemon in the foreground", Commands: []string{
		"wactl serve"}}
}

func checkDaemonHTTP(ctx context.Context, env *Env) Result {
	var r Result
	if env.BaseURL == "" {
		r.Status, r.Summary = Skip, "skipped: no configuration"
		return r
	}
	r.add("url", env.BaseURL)
	code, h, err := env.getJSON(ctx, "/health")
	if err != nil {
		if unreachable(err) {
			r.add("listening", "NO")
			r.fail("daemon not listening on " + env.BaseURL)
		} else {
			r.fail("/health: " + err.Error())
		}
		r.fix(env.daemonStartFix(ctx))
		return r
	}
	r.add("listening", "YES")
	r.add("health", code)
	sdw, hasSDW := h["sessions_dir_writable"].(bool)
	r.add("sessions_dir_writable", fmt.Sprint(h["sessions_dir_writable"]))
	for _, k := range []string{"waMode", "lockStatus", "accounts_total", "connected", "needs_qr", "version"} {
		if v, ok := h[k]; ok {
			r.add(k, jsonText(v))
		}
	}
	switch {
	case code != http.StatusOK:
		r.fail(fmt.Sprintf("/health answered %d (%v)", code, h["warnings"]))
	case !hasSDW:
		r.fail("/health does not expose sessions_dir_writable: not a wactl daemon, or an old one")
	case !sdw:
		r.fail("the daemon cannot write its sessions dir")
	}
	if code, rd, err := env.getJSON(ctx, "/ready"); err == nil {
		r.add("ready", fmt.Sprintf("%d %v (%v)", code, rd["ready"], rd["reason"]))
		if rd["ready"] != true && r.Status != Fail {
			r.warn(fmt.Sprintf("daemon is PASSIVE: %v", rd["reason"]))
		}
	} else {
		r.fail("/ready: " + err.Error())
	}
	if code, d, err := env.getJSON(ctx, "/api/status/dashboard"); err == nil && code == http.StatusOK {
		r.add("dashboard", fmt.Sprintf("total=%s connected=%s needs_qr=%s", jsonText(d["total"]), jsonText(d["connected"]), jsonText(d["needs_qr"])))
	} else if err != nil {
		r.fail("/api/status/dashboard: " + err.Error())
	} else {
		r.fail(fmt.Sprintf("/api/status/dashboard answered %d", code))
	}
	if r.Status == "" {
		r.set(OK, fmt.Sprintf("daemon up on %s: /health 200, sessions dir writable", env.BaseURL))
	}
	return r
}

func jsonText(v any) string {
	switch x := v.(type) {
	case nil:
		return "-"
	case float64:
		if x == float64(int64(x)) {
			return fmt.Sprint(int64(x))
		}
	case string:
		return x
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// checkHealthBurst sends BurstN /health requests, 10 at a time, as the
// seed's burst test did: every answer must be 200.
func checkHealthBurst(ctx context.Context, env *Env) Result {
	var r Result
	if env.BaseURL == "" {
		r.Status, r.Summary = Skip, "skipped: no configuration"
		return r
	}
	if _, _, err := env.getJSON(ctx, "/healthz"); unreachable(err) {
		r.Status, r.Summary = Skip, "skipped: daemon not reachable"
		return r
	}
	var mu sync.Mutex
	codes := map[string]int{}
	sem := make(chan struct{}, 10)
	var wg sync.WaitGroup
	start := time.Now()
	for range env.BurstN {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			key := ""
			code, _, err := env.getJSON(ctx, "/health")
			switch {
			case errors.Is(err, context.DeadlineExceeded) || (err != nil && strings.Contains(err.Error(), "deadline")):
				key = "timeout"
			case err != nil && code == 0:
				key = "error"
			default:
				key = fmt.Sprint(code)
			}
			mu.Lock()
			codes[key]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	took := time.Since(start)
	keys := make([]string, 0, len(codes))
	for k := range codes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%q:%d", k, codes[k]))
	}
	r.add("burst", "{"+strings.Join(parts, ",")+"}")
	r.add("took", took.Round(time.Millisecond))
	if codes["200"] != env.BurstN {
		msg := fmt.Sprintf("health burst: %d of %d answered 200", codes["200"], env.BurstN)
		if codes["429"] > 0 {
			msg += fmt.Sprintf(" (%d rate limited: /health must be exempt from rate limits)", codes["429"])
		}
		r.fail(msg)
		return r
	}
	r.set(OK, fmt.Sprintf("%d/%d health requests answered 200", env.BurstN, env.BurstN))
	return r
}

func checkAccounts(ctx context.Context, env *Env) Result {
	var r Result
	if env.BaseURL == "" {
		r.Status, r.Summary = Skip, "skipped: no configuration"
		return r
	}
	code, d, err := env.getJSON(ctx, "/api/status/dashboard")
	if unreachable(err) {
		r.Status, r.Summary = Skip, "skipped: daemon not reachable"
		return r
	}
	if err != nil || code != http.StatusOK {
		r.fail(fmt.Sprintf("dashboard: %d %v", code, err))
		return r
	}
	accts, _ := d["accounts"].([]any)
	byState := map[string][]string{}
	stale := []string{}
	for _, a := range accts {
		m, _ := a.(map[string]any)
		id, _ := m["accountId"].(string)
		st, _ := m["state"].(string)
		byState[st] = append(byState[st], id)
		if m["isStale"] == true {
			stale = append(stale, id)
		}
	}
	needsQR := append(append([]string{}, byState["needs_qr"]...), byState["logged_out"]...)
	r.add("total", len(accts))
	r.add("connected", len(byState["connected"]))
	r.add("needs_qr", len(needsQR))
	r.add("stale", len(stale))
	r.add("client_outdated", len(byState["client_outdated"]))
	if n := len(byState["client_outdated"]); n > 0 {
		r.fail(fmt.Sprintf("WhatsApp rejects this client version (405 client outdated) for %d account(s)", n))
		r.fix(Fix{Summary: "announce a current WhatsApp Web version, or upgrade wactl", Commands: []string{
			"sudo systemctl edit " + env.Unit + "   # [Service] Environment=WACTL_WHATSAPP_VERSION_OVERRIDE=2.3000.x (the current version)",
			"sudo systemctl restart " + env.Unit}})
	}
	if len(needsQR) > 0 {
		r.warn(fmt.Sprintf("%d account(s) need a new QR: %s", len(needsQR), strings.Join(needsQR, ", ")))
		for _, id := range needsQR {
			r.fix(Fix{Summary: "pair " + id + " again", Commands: []string{"wactl pair --account " + shq(id)}})
		}
	}
	if len(stale) > 0 {
		r.warn(fmt.Sprintf("%d connected account(s) stale (no event for too long): %s", len(stale), strings.Join(stale, ", ")))
	}
	if len(accts) == 0 {
		r.warn("the daemon runs no account")
	}
	if r.Status == "" {
		r.set(OK, fmt.Sprintf("%d/%d accounts connected", len(byState["connected"]), len(accts)))
	}
	return r
}
