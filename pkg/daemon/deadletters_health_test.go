package daemon

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// Journal dead letters are counted on /health (store.journalDeadLetters,
// a warning that names the command) and /metrics.
func TestDeadLettersInHealthAndMetrics(t *testing.T) {
	srv := serve(t, func() Status {
		s := sampleStatus()
		s.StoreBackend, s.JournalDeadLetters = "firestore", 2
		return s
	})
	_, m := getJSON(t, srv.URL+"/health", nil)
	st := m["store"].(map[string]any)
	if st["journalDeadLetters"] != 2.0 {
		t.Fatalf("/health store %v", st)
	}
	found := false
	for _, w := range m["warnings"].([]any) {
		found = found || strings.Contains(w.(string), "2 journal entries refused by Firestore") && strings.Contains(w.(string), "wactl journal dead-letters")
	}
	if !found || m["status"] != "degraded" {
		t.Fatalf("/health warnings %v status %v", m["warnings"], m["status"])
	}
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "\nwactl_journal_dead_letters 2\n") {
		t.Fatal("/metrics lacks wactl_journal_dead_letters 2")
	}
}
