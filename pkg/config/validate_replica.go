package config

import (
	"fmt"
	"path/filepath"
	"time"
)

// MinReplicaInterval keeps the session replica from writing to Firestore
// more often than a few times a minute per account.
const MinReplicaInterval = 5 * time.Second

// validateReplica checks the sessions.replica keys (issue 20). The key
// file's mode and contents are checked when serve loads it (pkg/replica)
// and by doctor, not here: validation reads no files.
func validateReplica(c *Config, p *Problems) {
	switch c.Sessions.Replica {
	case "off":
		return
	case "firestore":
	default:
		p.add("sessions.replica", "", fmt.Sprintf("%q is not one of off, firestore", c.Sessions.Replica))
		return
	}
	switch f := c.Sessions.ReplicaKeyFile; {
	case f == "":
		p.add("sessions.replica_key_file", "", "is required with sessions.replica: firestore; make one with `age-keygen -o /etc/wactl/replica.key && chmod 600 /etc/wactl/replica.key` and use the same file on every host")
	case !filepath.IsAbs(f):
		p.add("sessions.replica_key_file", "", fmt.Sprintf("%q is relative; use an absolute path", f))
	}
	if c.Sessions.ReplicaInterval < MinReplicaInterval {
		p.add("sessions.replica_interval", "", fmt.Sprintf("%s is too short; use at least %s (60s by default)", c.Sessions.ReplicaInterval, MinReplicaInterval))
	}
	if c.Sessions.Store == "postgres" {
		p.add("sessions.replica", "", "firestore is for deployments without the shared PostgreSQL device store; with sessions.store: postgres every host already has every session: set sessions.replica: off")
	}
	if c.LockBackend() != "firestore" {
		p.add("sessions.replica", "", "firestore needs the Firestore lease (lock.backend: firestore): without a shared lease no other host takes over, so there is nothing to restore for")
	}
	if c.Store.Firestore.ProjectID == "" {
		p.add("store.firestore.project_id", "", "is required with sessions.replica: firestore; set it or GOOGLE_CLOUD_PROJECT")
	}
}
