package doctor

import (
	"context"
	"fmt"
	"time"
)

// RestartCheck is the opt-in persistence proof of --restart-test: restart
// the service and verify that the accounts connected before come back
// connected without a QR, as the seed's restart test did.
func RestartCheck(within time.Duration) Check {
	return Check{Name: "restart", Title: "Accounts persist after restart", Network: true, Timeout: within + 15*time.Second,
		Run: func(ctx context.Context, env *Env) Result { return restartTest(ctx, env, within) }}
}

// restartPoll is how often the restart test polls /health.
var restartPoll = 250 * time.Millisecond

func restartTest(ctx context.Context, env *Env, within time.Duration) Result {
	var r Result
	sd := env.systemd(ctx)
	if !sd.Loaded() {
		r.Status, r.Summary = Skip, "skipped: needs the systemd unit "+env.Unit+" (and root)"
		return r
	}
	code, before, err := env.getJSON(ctx, "/health")
	if err != nil || code != 200 {
		r.fail(fmt.Sprintf("daemon not healthy before the restart (%d %v)", code, err))
		return r
	}
	wantConn := num(before["connected"])
	r.add("before", fmt.Sprintf("accounts_total=%d connected=%d needs_qr=%d", num(before["accounts_total"]), wantConn, num(before["needs_qr"])))
	pidBefore := sd.Props["MainPID"]
	start := time.Now()
	if _, err := env.Run(ctx, "systemctl", "restart", env.Unit); err != nil {
		r.fail("systemctl restart " + env.Unit + ": " + err.Error())
		return r
	}
	deadline := time.Now().Add(within)
	var last map[string]any
	for {
		code, h, err := env.getJSON(ctx, "/health")
		if err == nil && code == 200 {
			last = h
			if num(h["connected"]) >= wantConn && num(h["needs_qr"]) == 0 && h["waMode"] == "active" {
				break
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			if last != nil {
				r.add("after", fmt.Sprintf("accounts_total=%d connected=%d needs_qr=%d", num(last["accounts_total"]), num(last["connected"]), num(last["needs_qr"])))
			}
			r.fail(fmt.Sprintf("accounts did not come back connected within %s of the restart", within))
			r.fix(Fix{Summary: "read the restart's log", Commands: []string{"sudo journalctl -u " + env.Unit + " --since '-5min' --no-pager"}})
			return r
		}
		select {
		case <-ctx.Done():
		case <-time.After(restartPoll):
		}
	}
	r.add("after", fmt.Sprintf("accounts_total=%d connected=%d needs_qr=%d", num(last["accounts_total"]), num(last["connected"]), num(last["needs_qr"])))
	r.add("reconnected_in", time.Since(start).Round(100*time.Millisecond))
	if out, err := env.Run(ctx, "systemctl", "show", env.Unit, "-p", "MainPID"); err == nil {
		pid := ParseShow(string(out))["MainPID"]
		r.add("MainPID", fmt.Sprintf("%s → %s", pidBefore, pid))
		if pid == pidBefore {
			r.warn("MainPID did not change: the service was not restarted")
			return r
		}
	}
	r.set(OK, fmt.Sprintf("%d account(s) connected again without QR after restart", wantConn))
	return r
}

func num(v any) int {
	f, _ := v.(float64)
	return int(f)
}
