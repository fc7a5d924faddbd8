package doctor

import (
	"path/filepath"
	"strconv"
	"strings"
)

// Mount is one line of /proc/self/mountinfo.
type Mount struct {
	MountPoint string
	FSType     string
	Source     string
	Options    string
}

// ParseMountInfo reads mountinfo(5): "id parent maj:min root mountpoint
// opts [optional...] - fstype source superopts", with octal escapes.
func ParseMountInfo(text string) []Mount {
	var out []Mount
	for _, line := range strings.Split(text, "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		f := strings.Fields(pre)
		g := strings.Fields(post)
		if len(f) < 6 || len(g) < 1 {
			continue
		}
		m := Mount{MountPoint: unescapeOctal(f[4]), Options: f[5], FSType: g[0]}
		if len(g) > 1 {
			m.Source = unescapeOctal(g[1])
		}
		out = append(out, m)
	}
	return out
}

// MountOf returns the mount holding path: the longest mount point that is
// path or a parent of it (later lines win, as they mount over earlier).
func MountOf(mounts []Mount, path string) (Mount, bool) {
	path = filepath.Clean(path)
	best, found := Mount{}, false
	for _, m := range mounts {
		if underAny(path, []string{m.MountPoint}) && (!found || len(m.MountPoint) >= len(best.MountPoint)) {
			best, found = m, true
		}
	}
	return best, found
}

func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
