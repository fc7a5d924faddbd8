package daemon

// The traces `wactl accounts remove` leaves on this host (removed/<time>-<id>
// and, with --purge, removed/<time>-<id>.purged) are read by
// replica.LastRemoval; replicaSync.removedHere acts on them.
