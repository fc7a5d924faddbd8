package config

import (
	"strings"
	"testing"
)

func TestReplicaKeysValidated(t *testing.T) {
	env := func(vars map[string]string) LoadOptions {
		base := map[string]string{"STATE_DIRECTORY": t.TempDir(), "INSTANCE_ID": "host-a",
			"WACTL_LOCK_BACKEND": "firestore", "GOOGLE_CLOUD_PROJECT": "proj"}
		for k, v := range vars {
			base[k] = v
		}
		return LoadOptions{SearchPaths: []string{}, LookupEnv: func(k string) (string, bool) { v, ok := base[k]; return v, ok },
			Hostname: func() (string, error) { return "host-a", nil }}
	}
	l, err := Load(env(nil))
	if err != nil || l.Config.Sessions.Replica != "off" || l.Config.Sessions.ReplicaInterval.Seconds() != 60 {
		t.Fatalf("defaults: %+v %v", l.Config.Sessions, err)
	}
	l, err = Load(env(map[string]string{"WACTL_SESSIONS_REPLICA": "firestore", "WACTL_SESSIONS_REPLICA_KEY_FILE": "/etc/wactl/replica.key"}))
	if err != nil || l.Config.Sessions.ReplicaKeyFile != "/etc/wactl/replica.key" {
		t.Fatalf("valid replica config: %v", err)
	}
	for _, c := range []struct {
		vars map[string]string
		want string
	}{
		{map[string]string{"WACTL_SESSIONS_REPLICA": "s3"}, "sessions.replica"},
		{map[string]string{"WACTL_SESSIONS_REPLICA": "firestore"}, "age-keygen"},
		{map[string]string{"WACTL_SESSIONS_REPLICA": "firestore", "WACTL_SESSIONS_REPLICA_KEY_FILE": "replica.key"}, "relative"},
		{map[string]string{"WACTL_SESSIONS_REPLICA": "firestore", "WACTL_SESSIONS_REPLICA_KEY_FILE": "/k", "WACTL_SESSIONS_REPLICA_INTERVAL": "1s"}, "too short"},
		{map[string]string{"WACTL_SESSIONS_REPLICA": "firestore", "WACTL_SESSIONS_REPLICA_KEY_FILE": "/k", "WACTL_LOCK_BACKEND": "embedded"}, "Firestore lease"},
	} {
		got := strings.Join(problems(t, env(c.vars)), "\n")
		if !strings.Contains(got, c.want) {
			t.Errorf("%v: problems %q, want one with %q", c.vars, got, c.want)
		}
	}
}
