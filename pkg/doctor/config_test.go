package doctor

import (
	"strings"
	"testing"
)

// TestDoctorWarnsWithoutReaderAllowlist is issue 16 item 6 (doctor side):
// with a Firebase project and no reader allowlist every user of the project
// reads every conversation; doctor says so and how to fix it.
func TestDoctorWarnsWithoutReaderAllowlist(t *testing.T) {
	env := testEnv(t, map[string]string{"WACTL_API_FIREBASE_PROJECT_ID": "shop-prod"})
	r := runCheck(t, env, "config.load")
	if r.Status != Warn || !strings.Contains(r.Summary, "no reader allowlist") {
		t.Fatalf("want a warning about the allowlist, got %s: %s", r.Status, r.Summary)
	}
	if len(r.Fixes) == 0 || !strings.Contains(strings.Join(r.Fixes[0].Commands, " ")+r.Fixes[0].Summary, "allowed_emails") {
		t.Fatalf("no fix naming the keys: %+v", r.Fixes)
	}
	env = testEnv(t, map[string]string{"WACTL_API_FIREBASE_PROJECT_ID": "shop-prod", "WACTL_API_ALLOWED_UIDS": "u1"})
	if r := runCheck(t, env, "config.load"); r.Status != OK {
		t.Fatalf("allowlist set: %s: %s", r.Status, r.Summary)
	}
}
