package sessions

// Store kinds, as sessions.store names them.
const (
	StoreKindSQLite   = "sqlite"
	StoreKindPostgres = "postgres"
)

// Kind is the device store this Store uses: StoreKindSQLite (per-account
// files under the root) or StoreKindPostgres (one shared database).
func (s *Store) Kind() string {
	if s.pg != nil {
		return StoreKindPostgres
	}
	return StoreKindSQLite
}

// Close releases the PostgreSQL pool and its lock connection (and with it
// every advisory lock this process holds). A SQLite Store holds nothing
// between calls; Close is a no-op there.
func (s *Store) Close() error {
	if s.pg == nil {
		return nil
	}
	return s.pg.close()
}
