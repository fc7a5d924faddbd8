package config

import (
	"errors"
	"testing"
)

// FuzzLoad feeds random YAML and environment values to the loader: it may
// report problems but must never panic, and a problem-free result must pass
// validation on its own.
func FuzzLoad(f *testing.F) {
	f.Add("http:\n  port: 8080\n", "PORT", "9000")
	f.Add("lock:\n  ttl: 1h\n", "WACTL_LOCK_TTL", "-5s")
	f.Add("store: {backend: firestore, firestore: {project_id: p}}\n", "STATE_DIRECTORY", ":::")
	f.Add("- a\n- b\n", "WACTL_HTTP_HOST", "")
	f.Add("http: {port: 1e99}\nlog: [x]\n", "INSTANCE_ID", "\x00")
	f.Add("sessions:\n  path: !!binary aGVsbG8=\n", "SESSIONS_PATH", "rel")
	f.Fuzz(func(t *testing.T, yaml, envKey, envVal string) {
		o := opts(env(envKey, envVal), map[string]string{"/etc/wactl/config.yaml": yaml})
		l, err := Load(o)
		if l == nil {
			t.Fatal("Load returned no result")
		}
		var pe *ProblemsError
		if err != nil && !errors.As(err, &pe) {
			t.Fatalf("unexpected error type %T: %v", err, err)
		}
		if err == nil {
			if ps := Validate(&l.Config); len(ps) != 0 {
				t.Fatalf("accepted config fails validation: %v", ps)
			}
			_ = l.Entries()
		}
	})
}
