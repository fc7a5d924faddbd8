// Package memtrim gives back, once the daemon is up, the memory the kernel
// mapped in while the program started and will not need again.
//
// Why there is anything to give back: package initialisation of the linked
// libraries (whatsmeow's protobuf descriptors, gRPC/Firestore, Prometheus,
// the SQLite driver) touches pages all over the executable's text and
// read-only data, and the kernel's fault-around maps up to 64 KB around
// each touched page. Those pages stay counted in the process's RSS
// (RssFile) although an idle daemon never touches most of them again:
// measured on wactl serve with 0 accounts, about 23 MB of its ~29 MB RSS
// were executable pages, of which an idle daemon answering health checks
// uses 6-12 MB.
//
// Why this is safe: it only advises the kernel (madvise MADV_PAGEOUT) about
// the private read-only and read-execute mappings of the running
// executable itself. Their pages are clean copies of the file on disk: the
// kernel drops them without writing anything and, on the next touch,
// faults them back in from the page cache or the executable. No data is
// lost, nothing needs swap, and writable mappings (.data, .bss, the heap,
// goroutine stacks), anonymous memory and every other file (the SQLite
// database and its -shm map) are never advised. A page copied on write
// inside such a mapping is anonymous memory the kernel only reclaims to
// swap, so it is kept when there is none.
//
// The kernel does not page out every page it is asked to: only pages of a
// file the process owns or could open for writing (the side-channel fix in
// Linux 5.4+; the shipped unit runs as User=wactl with a root-owned
// /usr/local/bin/wactl, where MADV_PAGEOUT succeeds and does nothing), not
// pages still dirty in the page cache (a binary installed seconds before
// the restart), not pages another process maps. What the page-out left
// resident is then dropped with MADV_DONTNEED — but only in a mapping that
// smaps says holds no anonymous (copied-on-write) page: such a mapping is
// nothing but clean page-cache pages, and dropping them from the page
// table loses nothing; the next touch maps the same page-cache page again.
// (In a mapping with a private copy — a PIE binary's relocated RELRO data,
// a debugger's breakpoint — MADV_DONTNEED would throw the copy away, so
// such a mapping is left alone.) Unmapped, the pages are then dropped from
// the page cache too (posix_fadvise DONTNEED on the executable, which needs
// only read access): the kernel drops only clean pages no process maps, and
// writes dirty ones back first. Without it fault-around maps 64 KB of the
// cached pages back per fault and the pages stay charged to the service's
// cgroup. The cost: a wactl command started later reads them from disk.
//
// The mappings are also marked MADV_RANDOM: a paged-out page that is
// needed again is then read alone, instead of with the 128 KB of read-ahead
// around it that fault-around would map straight back into the RSS
// (measured: RssFile 5.8 MB five seconds after the trim with it, 12.3 MB
// without). The hint only changes how much is read per fault; it lasts for
// the life of the process, so a code path first used later (an account
// connecting) takes more, smaller reads.
//
// What it costs: three reads of /proc/self/smaps (about a millisecond),
// and a minor fault (or a small read from disk if the page was evicted)
// the first time each page is used again: the first /metrics or dashboard
// request after the trim is a little slower. It is done once, after
// start-up, not periodically: pages the daemon keeps using would only be
// faulted back in.
package memtrim

import "errors"

// ErrNotSupported means the kernel does not know MADV_PAGEOUT (Linux
// before 5.4, or not Linux). Nothing was changed; it is not a failure.
var ErrNotSupported = errors.New("memtrim: this kernel cannot page out memory on request (MADV_PAGEOUT needs Linux 5.4 or newer)")

// Result is what ReleaseStartupPages did.
type Result struct {
	// Mappings is how many mappings of the executable were advised to page
	// out (the kernel may still have ignored the advice; see Unmapped).
	Mappings int
	// Before and After are the resident bytes of those mappings (smaps
	// "Rss") just before and just after the advice.
	Before, After uint64
	// Released is Before - After, or 0 if the mappings grew meanwhile.
	Released uint64
	// Unmapped is how many mappings still had resident pages after the
	// page-out (pages the kernel would not evict; see the package comment)
	// and had them dropped from the page table instead.
	Unmapped int
	// Evicted reports that the unmapped pages were also dropped from the
	// page cache (those no other process maps and that were clean).
	Evicted bool
}
