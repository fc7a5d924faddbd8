package memtrim

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// ReleaseStartupPages pages out the resident pages of the running
// executable's read-only and read-execute mappings (see the package
// comment for why that is safe). It returns ErrNotSupported, having
// changed nothing, when the kernel has no MADV_PAGEOUT.
func ReleaseStartupPages() (Result, error) {
	// readlink, not a path resolution: for a binary replaced on disk since
	// it started, both this and the maps path end in " (deleted)", and they
	// still name the same mappings.
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return Result{}, fmt.Errorf("memtrim: find the executable: %w", err)
	}
	return release(exe, true)
}

// release advises the mappings of exe; pageout false skips MADV_PAGEOUT
// so that tests can exercise the MADV_DONTNEED path as any user.
func release(exe string, pageout bool) (Result, error) {
	before, err := executableMappings(exe)
	if err != nil {
		return Result{}, err
	}
	var res Result
	var errs []error
	for _, m := range before {
		res.Before += m.Rss
		if m.Rss == 0 || !pageout {
			continue
		}
		switch e := madvise(m, unix.MADV_PAGEOUT); {
		case e == nil:
			res.Mappings++
		case errors.Is(e, unix.EINVAL) && res.Mappings == 0:
			// Unknown advice: a kernel before 5.4. (EINVAL also covers
			// locked pages — after mlockall there is nothing to release
			// either.)
			return Result{}, ErrNotSupported
		default:
			errs = append(errs, e)
		}
	}
	mid, err := executableMappings(exe)
	if err != nil {
		return res, errors.Join(append(errs, err)...)
	}
	// What the page-out left resident the kernel would not evict: the
	// executable belongs to another user, its pages are still dirty in the
	// page cache (a binary installed seconds before the restart), or
	// another process maps them. Unmap those, if nothing private is lost.
	var unmapped []Mapping
	for _, m := range mid {
		if m.Anonymous != 0 || m.Rss == 0 {
			continue
		}
		if e := madvise(m, unix.MADV_DONTNEED); e != nil {
			errs = append(errs, e)
			continue
		}
		res.Unmapped++
		unmapped = append(unmapped, m)
	}
	if len(unmapped) > 0 {
		// Unmapped, the pages are evictable: ask the page cache to drop
		// them too, or fault-around would map 64 KB of them back per fault.
		if e := evict(unmapped); e != nil {
			errs = append(errs, e)
		} else {
			res.Evicted = true
		}
	}
	for _, m := range before {
		if m.Rss != 0 {
			// Read released pages back one at a time (package comment).
			// Only a hint: a failure changes nothing but the refill.
			_ = madvise(m, unix.MADV_RANDOM)
		}
	}
	after := mid
	if len(unmapped) > 0 {
		if after, err = executableMappings(exe); err != nil {
			return res, errors.Join(append(errs, err)...)
		}
	}
	for _, m := range after {
		res.After += m.Rss
	}
	if res.Before > res.After {
		res.Released = res.Before - res.After
	}
	return res, errors.Join(errs...)
}

// evict drops the file pages behind the mappings ms from the page cache
// (posix_fadvise DONTNEED). Only pages no process maps and that are clean
// go; a dirty page is written back first and stays until it is clean.
func evict(ms []Mapping) error {
	f, err := os.Open("/proc/self/exe")
	if err != nil {
		return fmt.Errorf("memtrim: open the executable to drop its cached pages: %w", err)
	}
	defer f.Close()
	for _, m := range ms {
		if err := unix.Fadvise(int(f.Fd()), int64(m.Offset), int64(m.Size()), unix.FADV_DONTNEED); err != nil {
			return fmt.Errorf("memtrim: drop the cached pages of %x-%x %s: %w", m.Start, m.End, m.Perms, err)
		}
	}
	return nil
}

func madvise(m Mapping, advice int) error {
	// A raw syscall rather than unix.Madvise: the range is memory this
	// program's own code lives in, not a Go slice.
	_, _, e := unix.Syscall(unix.SYS_MADVISE, uintptr(m.Start), uintptr(m.Size()), uintptr(advice))
	if e != 0 {
		return fmt.Errorf("memtrim: madvise %x-%x %s: %w", m.Start, m.End, m.Perms, e)
	}
	return nil
}

func executableMappings(exe string) ([]Mapping, error) {
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return nil, fmt.Errorf("memtrim: read the memory map: %w", err)
	}
	ms, err := ParseMaps(string(b))
	if err != nil {
		return nil, fmt.Errorf("memtrim: /proc/self/smaps: %w", err)
	}
	return SelectExecutable(ms, exe), nil
}
