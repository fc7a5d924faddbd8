package lock

import "sync/atomic"

// FenceRef lets a store be opened before its lease exists (serve opens the
// store first): until Set, and after a nil Set, it reports no epoch.
type FenceRef struct{ l atomic.Pointer[Lock] }

// Set names the lease whose Fence this ref reports.
func (r *FenceRef) Set(l Lock) {
	if l == nil {
		r.l.Store(nil)
		return
	}
	r.l.Store(&l)
}

// Fence is Lock.Fence of the lease set, or 0,false.
func (r *FenceRef) Fence() (int64, bool) {
	p := r.l.Load()
	if p == nil {
		return 0, false
	}
	return (*p).Fence()
}
