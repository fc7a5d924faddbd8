//go:build !linux

package memtrim

// ReleaseStartupPages does nothing outside Linux: there is no MADV_PAGEOUT.
func ReleaseStartupPages() (Result, error) { return Result{}, ErrNotSupported }
