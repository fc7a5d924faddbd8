package daemon

import (
	"strings"
	"testing"
)

// TestHealthSaysDiskFullWithoutPaths is issue 16 item 10: a full disk
// showed as "sessions directory is not writable: /var/lib/..." and "store
// cannot be read"; /health (public) says disk full, and carries no server
// path.
func TestHealthSaysDiskFullWithoutPaths(t *testing.T) {
	s := sampleStatus()
	s.SessionsDirWritable = false
	s.SessionsError = "sessions root /var/lib/wactl/sessions failed the write probe: write /var/lib/wactl/sessions/.tmp-probe.1: no space left on device"
	s.StoreReachable = false
	s.StoreError = "disk full (no space left on device): sqlite store: /var/lib/wactl/wactl.db: database or disk is full (13)"
	srv := serve(t, func() Status { return s })
	_, m := getJSON(t, srv.URL+"/health", nil)
	var warnings []string
	for _, w := range m["warnings"].([]any) {
		warnings = append(warnings, w.(string))
	}
	all := strings.Join(warnings, "\n")
	if strings.Count(all, "disk full") < 2 {
		t.Errorf("want both warnings to say disk full:\n%s", all)
	}
	if strings.Contains(all, "/var/lib") {
		t.Errorf("/health shows server paths:\n%s", all)
	}
	// Not writable for another reason: no disk-full claim.
	s.SessionsError = "sessions root /x failed the write probe: permission denied"
	s.StoreReachable = true
	_, m = getJSON(t, srv.URL+"/health", nil)
	if w := m["warnings"].([]any); len(w) == 0 || strings.Contains(w[0].(string), "disk full") || strings.Contains(w[0].(string), "/x") {
		t.Errorf("permission problem: %v", w)
	}
}
