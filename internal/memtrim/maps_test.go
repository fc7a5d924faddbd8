package memtrim

import (
	"strings"
	"testing"
)

const exe = "/usr/local/bin/wactl"

// sampleSmaps is the shape of a real wactl serve smaps: the executable's
// three segments, heap and anonymous arenas, the SQLite database and its
// shared -shm map, a library and the vdso.
const sampleSmaps = `00400000-01000000 r-xp 00000000 fe:00 1234                               /usr/local/bin/wactl
Size:              12288 kB
Rss:               11264 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me
01000000-02200000 r--p 00c00000 fe:00 1234                               /usr/local/bin/wactl
Rss:                9000 kB
Anonymous:             0 kB
THPeligible:           0
02200000-02300000 rw-p 01e00000 fe:00 1234                               /usr/local/bin/wactl
Rss:                 512 kB
Anonymous:           200 kB
02300000-02400000 rw-p 00000000 00:00 0
Rss:                 300 kB
Anonymous:           300 kB
c000000000-c004000000 rw-p 00000000 00:00 0                              [heap]
7f0000000000-7f0000008000 rw-s 00000000 fe:00 5555                       /var/lib/wactl/wactl.db-shm
Rss:                  32 kB
7f0000010000-7f0000020000 r--p 00000000 fe:00 5554                       /var/lib/wactl/wactl.db
7f0000020000-7f0000030000 r-xp 00000000 fe:00 777                        /usr/lib/libc.so.6
7f0000030000-7f0000040000 r-xs 00000000 fe:00 1234                       /usr/local/bin/wactl
7f0000040000-7f0000050000 r--p 00000000 fe:00 1234                       /usr/local/bin/wactl-old
7f0000050000-7f0000060000 rwxp 00000000 fe:00 1234                       /usr/local/bin/wactl
7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0                          [vdso]
`

func TestParseMaps(t *testing.T) {
	ms, err := ParseMaps(sampleSmaps)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 12 {
		t.Fatalf("parsed %d mappings, want 12: %+v", len(ms), ms)
	}
	text := ms[0]
	if text.Start != 0x400000 || text.End != 0x1000000 || text.Perms != "r-xp" || text.Inode != 1234 ||
		text.Path != exe || text.Rss != 11264*1024 || text.Anonymous != 0 || text.VmFlags != "rd ex mr mw me" {
		t.Errorf("text segment parsed as %+v", text)
	}
	if ms[2].Anonymous != 200*1024 || ms[2].Offset != 0x1e00000 {
		t.Errorf("data segment parsed as %+v", ms[2])
	}
	if ms[3].Path != "" || ms[4].Path != "[heap]" {
		t.Errorf("anonymous and heap paths: %q %q", ms[3].Path, ms[4].Path)
	}
}

func TestSelectExecutableOnlyReadOnlyPrivateSegmentsOfTheExecutable(t *testing.T) {
	ms, err := ParseMaps(sampleSmaps)
	if err != nil {
		t.Fatal(err)
	}
	got := SelectExecutable(ms, exe)
	if len(got) != 2 || got[0].Start != 0x400000 || got[1].Start != 0x1000000 {
		t.Fatalf("selected %+v, want exactly the r-xp and r--p segments of %s", got, exe)
	}
	if got := SelectExecutable(ms, "/usr/lib/libc.so.6"); len(got) != 1 || got[0].Perms != "r-xp" {
		t.Errorf("another file's own segments: %+v", got)
	}
	if got := SelectExecutable(ms, "[vdso]"); got != nil {
		t.Errorf("a special region was selected: %+v", got)
	}
	if got := SelectExecutable(ms, ""); got != nil {
		t.Errorf("an empty executable path selected anonymous memory: %+v", got)
	}
}

func TestSelectExecutableReplacedBinary(t *testing.T) {
	// After an upgrade replaced the file, the kernel names the running one
	// "... (deleted)" both in maps and in the /proc/self/exe link.
	deleted := exe + " (deleted)"
	text := strings.ReplaceAll(sampleSmaps, exe+"\n", deleted+"\n")
	ms, err := ParseMaps(text)
	if err != nil {
		t.Fatal(err)
	}
	if got := SelectExecutable(ms, deleted); len(got) != 2 {
		t.Fatalf("selected %+v, want the two read-only segments", got)
	}
	if got := SelectExecutable(ms, exe); got != nil {
		t.Fatalf("the new file's path selected the old mappings: %+v", got)
	}
}

func TestParseMapsPathWithSpaces(t *testing.T) {
	ms, err := ParseMaps("1000-2000 r--p 00000000 08:01 42   /opt/my apps/wactl\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].Path != "/opt/my apps/wactl" {
		t.Fatalf("got %+v", ms)
	}
}

func TestParseMapsRejectsWhatItDoesNotUnderstand(t *testing.T) {
	for _, text := range []string{
		"Rss: 4 kB\n",                                  // field before a region
		"1000 r--p 00000000 08:01 42 /x\n",             // no range
		"2000-1000 r--p 00000000 08:01 42 /x\n",        // inverted
		"1000-1000 r--p 00000000 08:01 42 /x\n",        // empty
		"1000-2000 r--p 00000000 08:01\n",              // no inode
		"1000-2000 rp 00000000 08:01 42 /x\n",          // short perms
		"1000-2000 r--p zz 08:01 42 /x\n",              // bad offset
		"1000-2000 r--p 0 0801 42 /x\n",                // bad device
		"1000-2000 r--p 0 08:01 42 /x\nRss: 4 MB\n",    // unit
		"1000-2000 r--p 0 08:01 42 /x\nRss: lots kB\n", // number
		"1000-g000 r--p 0 08:01 42 /x\n",               // bad end
	} {
		if ms, err := ParseMaps(text); err == nil {
			t.Errorf("ParseMaps(%q) = %+v, want an error", text, ms)
		}
	}
}

// FuzzParseMaps: whatever the text, the parser does not panic and the
// selection never yields a writable, shared, anonymous or foreign mapping.
func FuzzParseMaps(f *testing.F) {
	f.Add(sampleSmaps, exe)
	f.Add("1000-2000 r--p 00000000 08:01 42   /opt/my apps/wactl\n", "/opt/my apps/wactl")
	f.Add("1000-2000 r-xp 0 08:01 42 /x (deleted)\nRss: 8 kB\n", "/x (deleted)")
	f.Fuzz(func(t *testing.T, text, exe string) {
		ms, err := ParseMaps(text)
		if err != nil {
			return
		}
		for _, m := range ms {
			if m.End <= m.Start || len(m.Perms) != 4 {
				t.Fatalf("accepted an invalid region %+v", m)
			}
		}
		for _, m := range SelectExecutable(ms, exe) {
			if m.Path != exe || !strings.HasPrefix(exe, "/") || m.Inode == 0 ||
				(m.Perms != "r--p" && m.Perms != "r-xp") {
				t.Fatalf("selected %+v for executable %q", m, exe)
			}
		}
	})
}
