package config

import (
	"fmt"
	"time"
)

// validateSessionsStore checks sessions.store and, for postgres, the DSN
// (presence only: parsing it belongs to the driver, and reachability to
// doctor) and the pool bounds.
func validateSessionsStore(c *Config, p *Problems) {
	switch c.Sessions.Store {
	case "sqlite":
		return
	case "postgres":
	default:
		p.add("sessions.store", "", fmt.Sprintf("%q is not one of sqlite, postgres", c.Sessions.Store))
		return
	}
	if c.Sessions.PostgresDSN == "" {
		p.add("sessions.postgres_dsn", "", "is required with sessions.store: postgres; give it as WACTL_SESSIONS_POSTGRES_DSN_FILE (a file of mode 0600 holding e.g. postgres://wactl:PASSWORD@db.internal/wactl)")
	}
	if n := c.Sessions.PostgresMaxConns; n < 1 || n > 100 {
		p.add("sessions.postgres_max_conns", "", fmt.Sprintf("%d is out of range; use 1 to 100 (8 by default)", n))
	}
	if d := c.Sessions.PostgresTimeout; d < time.Second || d > 5*time.Minute {
		p.add("sessions.postgres_timeout", "", fmt.Sprintf("%s is out of range; use 1s to 5m (15s by default)", d))
	}
}
