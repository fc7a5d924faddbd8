package memtrim

import (
	"fmt"
	"strconv"
	"strings"
)

// Mapping is one region of /proc/self/maps, with the resident sizes that
// /proc/self/smaps adds (zero when parsed from maps).
type Mapping struct {
	Start, End uint64
	Perms      string // e.g. "r-xp"
	Offset     uint64
	Inode      uint64
	Path       string // "" for anonymous regions, "[heap]" and the like for special ones
	// Rss and Anonymous are bytes, from smaps' "Rss:" and "Anonymous:" lines.
	Rss       uint64
	Anonymous uint64
	// VmFlags are smaps' two-letter flags ("rd ex mr ... rr").
	VmFlags string
}

// Size is the length of the mapping in bytes.
func (m Mapping) Size() uint64 { return m.End - m.Start }

// ParseMaps parses the text of /proc/PID/maps or /proc/PID/smaps. It is
// strict about region lines: a line it does not understand is an error,
// because the caller hands these addresses to madvise and must not act on
// a guess. Unknown smaps field lines ("Key: value") are ignored.
func ParseMaps(text string) ([]Mapping, error) {
	var out []Mapping
	for n, line := range strings.Split(text, "\n") {
		if line == "" {
			continue
		}
		first, _, _ := strings.Cut(line, " ")
		if strings.HasSuffix(first, ":") {
			if len(out) == 0 {
				return nil, fmt.Errorf("line %d: field %q before any region", n+1, first)
			}
			if err := parseField(&out[len(out)-1], first, line[len(first):]); err != nil {
				return nil, fmt.Errorf("line %d: %w", n+1, err)
			}
			continue
		}
		m, err := parseRegion(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n+1, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// parseRegion parses "start-end perms offset dev inode [path]". The path
// is everything after the inode and its padding, so it may hold spaces
// (and " (deleted)" when the file was replaced since it was mapped).
func parseRegion(line string) (Mapping, error) {
	var m Mapping
	rest := line
	var f [5]string
	for i := range f {
		rest = strings.TrimLeft(rest, " ")
		var ok bool
		f[i], rest, ok = strings.Cut(rest, " ")
		if !ok && i < len(f)-1 {
			return m, fmt.Errorf("region line %q: too few fields", line)
		}
	}
	lo, hi, ok := strings.Cut(f[0], "-")
	if !ok {
		return m, fmt.Errorf("region line %q: address range has no '-'", line)
	}
	var err error
	if m.Start, err = strconv.ParseUint(lo, 16, 64); err != nil {
		return m, fmt.Errorf("region line %q: start address: %w", line, err)
	}
	if m.End, err = strconv.ParseUint(hi, 16, 64); err != nil {
		return m, fmt.Errorf("region line %q: end address: %w", line, err)
	}
	if m.End <= m.Start {
		return m, fmt.Errorf("region line %q: empty or inverted address range", line)
	}
	if len(f[1]) != 4 {
		return m, fmt.Errorf("region line %q: permissions %q are not 4 characters", line, f[1])
	}
	m.Perms = f[1]
	if m.Offset, err = strconv.ParseUint(f[2], 16, 64); err != nil {
		return m, fmt.Errorf("region line %q: offset: %w", line, err)
	}
	if _, _, ok := strings.Cut(f[3], ":"); !ok {
		return m, fmt.Errorf("region line %q: device %q is not major:minor", line, f[3])
	}
	if m.Inode, err = strconv.ParseUint(f[4], 10, 64); err != nil {
		return m, fmt.Errorf("region line %q: inode: %w", line, err)
	}
	m.Path = strings.TrimLeft(rest, " ")
	return m, nil
}

// parseField records the smaps sizes we use; the rest are ignored.
func parseField(m *Mapping, key, value string) error {
	var dst *uint64
	switch key {
	case "VmFlags:":
		m.VmFlags = strings.TrimSpace(value)
		return nil
	case "Rss:":
		dst = &m.Rss
	case "Anonymous:":
		dst = &m.Anonymous
	default:
		return nil
	}
	num, unit, _ := strings.Cut(strings.TrimSpace(value), " ")
	if unit != "kB" {
		return fmt.Errorf("%s %q: want a size in kB", key, value)
	}
	kb, err := strconv.ParseUint(num, 10, 64)
	if err != nil || kb > (1<<54) {
		return fmt.Errorf("%s %q: not a size in kB", key, value)
	}
	*dst = kb * 1024
	return nil
}

// SelectExecutable returns the mappings that may be paged out: the
// private, read-only or read-execute mappings of the file exe (the path
// /proc/self/exe resolves to). Writable mappings (.data, .bss, heap) hold
// state that exists nowhere else; anonymous regions and other files (the
// SQLite -shm map, shared libraries) are not ours to judge.
func SelectExecutable(ms []Mapping, exe string) []Mapping {
	if !strings.HasPrefix(exe, "/") {
		return nil
	}
	var out []Mapping
	for _, m := range ms {
		if m.Path != exe || m.Inode == 0 {
			continue
		}
		if m.Perms != "r--p" && m.Perms != "r-xp" {
			continue
		}
		out = append(out, m)
	}
	return out
}
