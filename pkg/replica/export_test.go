package replica

// SetPointerWriteHook runs f between a pointer write's read and its write
// (a copy's flip, a delete's tombstone, a repair); nil removes it.
func SetPointerWriteHook(f func(r *Replica, id string)) { pointerWriteHook = f }

// SetCleanupHook runs f after a copy's flip or a delete's tombstone,
// before chunks are deleted; nil removes it.
func SetCleanupHook(f func(r *Replica, id string)) { cleanupHook = f }

// SetChunkWriteHook runs f after each chunk a copy writes; nil removes it.
func SetChunkWriteHook(f func(r *Replica, id string, n int)) { chunkWriteHook = f }
