package daemon

import "go.mau.fi/whatsmeow"

// SetIngestLimits sets the ingest gate's bounds (ingestgate.go) and
// returns the restore func.
func SetIngestLimits(perAccount, overall int) (restore func()) {
	pa, ov := ingestLimits.perAccount.Load(), ingestLimits.overall.Load()
	ingestLimits.perAccount.Store(int64(perAccount))
	ingestLimits.overall.Store(int64(overall))
	return func() { ingestLimits.perAccount.Store(pa); ingestLimits.overall.Store(ov) }
}

// IngestQueued returns the longest handler queue of one account and the
// total over all connected accounts, as the gate sees them.
func IngestQueued() (maxAccount, total int) {
	ingest.mu.Lock()
	for c := range ingest.clients {
		n := c.len()
		maxAccount = max(maxAccount, n)
		total += n
	}
	ingest.mu.Unlock()
	return maxAccount, total
}

// IngestBlocked is the number of nodes that waited at the gate.
func IngestBlocked() int64 { return ingest.blocks.Load() }

// IngestReliefs is the number of nodes let through by stallRelief.
func IngestReliefs() int64 { return ingest.reliefs.Load() }

// GateLive reports whether the ingest gate counts cli's socket as one that
// may still deliver; ok is false for a client made without the gate.
func GateLive(cli *whatsmeow.Client) (live, ok bool) {
	l, ok := cli.Log.(*gatedLogger)
	if !ok {
		return false, false
	}
	return l.c.live.Load(), true
}
