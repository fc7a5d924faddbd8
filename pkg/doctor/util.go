package doctor

import (
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

func orDash(s string) string { return orDefault(s, "-") }

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

func isYes(s string) bool {
	switch strings.ToLower(s) {
	case "yes", "true", "1", "on":
		return true
	}
	return false
}

// underAny reports whether path is one of dirs or inside one.
func underAny(path string, dirs []string) bool {
	path = filepath.Clean(path)
	for _, d := range dirs {
		d = filepath.Clean(d)
		if path == d || strings.HasPrefix(path, d+"/") || d == "/" {
			return true
		}
	}
	return false
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func dedupe(ss []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// shq quotes a path for a shell command when it needs it.
func shq(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r == '/' || r == '.' || r == '_' || r == '-' || r == '+' || r == ':' || r == '@' || r == '%' ||
			'0' <= r && r <= '9' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z')
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// ownerUID is the owner of path (not following a final symlink).
func ownerUID(path string) (int, bool) {
	fi, err := os.Lstat(path)
	if err != nil {
		return 0, false
	}
	sys, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(sys.Uid), true
}

// sudoAs is the prefix that runs a command as uid: "" when that is the
// user running doctor (a "sudo -u root" for root is noise), "sudo -u NAME "
// otherwise ("sudo -u '#UID' " for a uid without a name).
func sudoAs(euid, uid int) string {
	if uid == euid {
		return ""
	}
	name := userName(uid)
	if name == strconv.Itoa(uid) {
		name = "'#" + name + "'"
	}
	return "sudo -u " + name + " "
}

// ownerOfNearest is the owner of path or, when this user cannot see it,
// of its nearest parent that it can: the service's data dir is visible
// to an operator who cannot look inside it.
func ownerOfNearest(path string) (int, bool) {
	for p := filepath.Clean(path); ; p = filepath.Dir(p) {
		if uid, ok := ownerUID(p); ok {
			return uid, true
		}
		if p == filepath.Dir(p) {
			return 0, false
		}
	}
}
