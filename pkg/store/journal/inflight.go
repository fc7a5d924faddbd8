package journal

import "sync"

// inflight are seq ranges being shipped inline by a caller; the background
// shipper leaves them alone so that no entry is shipped twice at once.
type inflight struct {
	mu     sync.Mutex
	ranges map[int64]int64 // lo → hi
}

func (f *inflight) add(lo, hi int64) {
	f.mu.Lock()
	if f.ranges == nil {
		f.ranges = map[int64]int64{}
	}
	f.ranges[lo] = hi
	f.mu.Unlock()
}

func (f *inflight) remove(lo int64) {
	f.mu.Lock()
	delete(f.ranges, lo)
	f.mu.Unlock()
}

// snapshot returns the ranges and the lowest inflight seq (0 if none).
func (f *inflight) snapshot() (map[int64]int64, int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[int64]int64, len(f.ranges))
	var lowest int64
	for lo, hi := range f.ranges {
		out[lo] = hi
		if lowest == 0 || lo < lowest {
			lowest = lo
		}
	}
	return out, lowest
}

func contains(r map[int64]int64, seq int64) bool {
	for lo, hi := range r {
		if seq >= lo && seq <= hi {
			return true
		}
	}
	return false
}
