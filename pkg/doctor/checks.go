package doctor

import "time"

// Checks is the full list, in report order.
func Checks() []Check {
	return []Check{
		{Name: "config.load", Title: "Configuration loads and validates", Run: checkConfigLoad},
		{Name: "config.instance_id", Title: "Instance id is stable", Run: checkInstanceID},
		{Name: "config.legacy_env", Title: "Legacy environment names", Run: checkLegacyEnv},
		{Name: "systemd.service", Title: "Service running (systemd)", Run: checkSystemdService},
		{Name: "systemd.unit", Title: "Unit file settings", Run: checkSystemdUnit},
		{Name: "sessions.dir", Title: "Sessions dir set, exists, writable", Run: checkSessionsDir},
		{Name: "sessions.storage", Title: "Sessions dir on persistent storage", Run: checkSessionsStorage},
		{Name: "sessions.inventory", Title: "Session files", Timeout: 20 * time.Second, Run: checkSessionsInventory},
		{Name: "sessions.postgres", Title: "PostgreSQL device store", Network: true, Timeout: 40 * time.Second, Run: checkPGSessions},
		{Name: "sessions.replica", Title: "Session replica in Firestore", Timeout: 10 * time.Second, Run: checkReplica},
		{Name: "lease", Title: "Lease (lock)", Run: checkLease},
		{Name: "lease.clock", Title: "Clock skew vs Firestore", Network: true, Run: checkClockSkew},
		{Name: "lease.old_service", Title: "Old Node service on this host", Run: checkLegacyService},
		{Name: "store.local", Title: "Local store / journal", Timeout: 20 * time.Second, Run: checkStoreLocal},
		{Name: "journal.dead_letters", Title: "Journal dead letters (refused by Firestore)", Run: checkJournalDeadLetters},
		{Name: "history.queue", Title: "History syncs queued or lost", Run: checkHistoryQueue},
		{Name: "store.firestore", Title: "Firestore reachable, indexes", Network: true, Timeout: 10 * time.Second, Run: checkStoreFirestore},
		{Name: "daemon.http", Title: "Daemon /health, /ready, dashboard", Network: true, Run: checkDaemonHTTP},
		{Name: "daemon.burst", Title: "Health burst without errors", Network: true, Run: checkHealthBurst},
		{Name: "daemon.accounts", Title: "Accounts connected", Network: true, Run: checkAccounts},
		{Name: "api.auth", Title: "App API authentication", Run: checkAPIAuth},
	}
}
