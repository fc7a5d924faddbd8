package daemon

import (
	"strings"
	"testing"
	"time"
)

// TestRetryOnHealthAndDashboard: an account waiting for a retry shows on
// /health (a warning with reason and time) and on the dashboard.
func TestRetryOnHealthAndDashboard(t *testing.T) {
	st := sampleStatus()
	next := st.Now.Add(4 * time.Second)
	st.Accounts[1] = AccountStatus{ID: "account_prod_b", Phone: "+40700000001", State: StateStopped, HasDiskSession: true,
		RetryReason: "open session: account_prod_b is locked by pid 42", NextRetryAt: next, RetryCount: 2}
	srv := serve(t, func() Status { return st })
	_, h := getJSON(t, srv.URL+"/health", nil)
	found := false
	for _, w := range h["warnings"].([]any) {
		s := w.(string)
		if strings.Contains(s, "account_prod_b") && strings.Contains(s, "locked by pid 42") && strings.Contains(s, "2026-11-27T10:00:04Z") {
			found = true
		}
	}
	if !found || h["status"] != "degraded" {
		t.Fatalf("/health does not show the retry: %v", h)
	}
	_, d := getJSON(t, srv.URL+"/api/status/dashboard", nil)
	b := d["accounts"].([]any)[1].(map[string]any)
	if b["retryReason"] != st.Accounts[1].RetryReason || b["retryCount"] != 2.0 || b["nextRetryAt"] != "2026-11-27T10:00:04.000Z" {
		t.Fatalf("dashboard account %v", b)
	}
}
