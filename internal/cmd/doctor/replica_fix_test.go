package doctor_test

import (
	"os"
	"path/filepath"
	"testing"

	pdoctor "github.com/wactl/wactl/pkg/doctor"
)

// A throw-away age identity, only for these tests.
const testReplicaKey = "AGE-SECRET-KEY-1TYL7STMMQEHGV7MCM9WSZ9CWEWGJCAGXNC5XTXZU33549PG0E8ESDG68N7\n"

// replicaFixStates drive the sessions.replica check's fixes (issue 20) for
// TestEveryFixParsesAndWorks.
func replicaFixStates() []fixState {
	return []fixState{
		{"replica recommended", []string{"sessions.replica"}, func(t *testing.T) *pdoctor.Env {
			env := loadEnv(t, map[string]string{"WACTL_LOCK_BACKEND": "firestore", "GOOGLE_CLOUD_PROJECT": "proj"})
			env.Offline = true
			return env
		}, false, nil, ""},
		{"replica key readable by others", []string{"sessions.replica"}, func(t *testing.T) *pdoctor.Env {
			key := filepath.Join(t.TempDir(), "replica.key")
			os.WriteFile(key, []byte(testReplicaKey), 0o600)
			os.Chmod(key, 0o644)
			env := loadEnv(t, map[string]string{"WACTL_LOCK_BACKEND": "firestore", "GOOGLE_CLOUD_PROJECT": "proj",
				"WACTL_SESSIONS_REPLICA": "firestore", "WACTL_SESSIONS_REPLICA_KEY_FILE": key})
			env.Offline = true
			return env
		}, true, nil, ""},
		replicaPointerFixState(),
	}
}
