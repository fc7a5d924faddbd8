package doctor

import (
	"bufio"
	"strings"
)

// UnitFile is a parsed systemd unit file (with drop-ins merged by Merge):
// sections of ordered key/value assignments, keys repeating as systemd
// allows.
type UnitFile struct {
	Entries []UnitEntry
}

// UnitEntry is one assignment.
type UnitEntry struct {
	Section, Key, Value string
}

// ParseUnit reads systemd's unit syntax: [Section] headers, Key=Value,
// comments (# ;), and lines continued with a trailing backslash.
func ParseUnit(text string) *UnitFile {
	u := &UnitFile{}
	section := ""
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	var cont strings.Builder
	for sc.Scan() {
		line := sc.Text()
		if cont.Len() > 0 {
			line = cont.String() + " " + strings.TrimSpace(line)
			cont.Reset()
		}
		if strings.HasSuffix(line, `\`) {
			cont.WriteString(strings.TrimSuffix(line, `\`))
			continue
		}
		t := strings.TrimSpace(line)
		if t == "" || t[0] == '#' || t[0] == ';' {
			continue
		}
		if t[0] == '[' && strings.HasSuffix(t, "]") {
			section = t[1 : len(t)-1]
			continue
		}
		k, v, ok := strings.Cut(t, "=")
		if !ok {
			continue
		}
		u.Entries = append(u.Entries, UnitEntry{section, strings.TrimSpace(k), strings.TrimSpace(v)})
	}
	if cont.Len() > 0 {
		if k, v, ok := strings.Cut(strings.TrimSpace(cont.String()), "="); ok {
			u.Entries = append(u.Entries, UnitEntry{section, strings.TrimSpace(k), strings.TrimSpace(v)})
		}
	}
	return u
}

// Merge appends a drop-in's assignments, as systemd applies them.
func (u *UnitFile) Merge(d *UnitFile) { u.Entries = append(u.Entries, d.Entries...) }

// Last is the effective value of a single-valued key ("" when unset or
// reset).
func (u *UnitFile) Last(section, key string) string {
	v := ""
	for _, e := range u.Entries {
		if e.Section == section && e.Key == key {
			v = e.Value
		}
	}
	return v
}

// Has reports whether key is assigned at all.
func (u *UnitFile) Has(section, key string) bool {
	for _, e := range u.Entries {
		if e.Section == section && e.Key == key {
			return true
		}
	}
	return false
}

// List is the effective value of a list key: space-separated words,
// accumulated over assignments, an empty assignment resetting the list.
func (u *UnitFile) List(section, key string) []string {
	var out []string
	for _, e := range u.Entries {
		if e.Section != section || e.Key != key {
			continue
		}
		if e.Value == "" {
			out = nil
			continue
		}
		out = append(out, SplitQuoted(e.Value)...)
	}
	return out
}

// Env is the effective Environment= of the [Service] section.
func (u *UnitFile) Env() map[string]string {
	env := map[string]string{}
	for _, e := range u.Entries {
		if e.Section != "Service" || e.Key != "Environment" {
			continue
		}
		if e.Value == "" {
			env = map[string]string{}
			continue
		}
		for _, w := range SplitQuoted(e.Value) {
			if k, v, ok := strings.Cut(w, "="); ok {
				env[k] = v
			}
		}
	}
	return env
}

// SplitQuoted splits systemd's space-separated words, honouring double
// and single quotes and backslash escapes.
func SplitQuoted(s string) []string {
	var out []string
	var b strings.Builder
	in, quote, esc := false, rune(0), false
	for _, r := range s {
		switch {
		case esc:
			b.WriteRune(r)
			esc, in = false, true
		case r == '\\':
			esc = true
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				b.WriteRune(r)
			}
		case r == '"' || r == '\'':
			quote, in = r, true
		case r == ' ' || r == '\t':
			if in {
				out = append(out, b.String())
				b.Reset()
				in = false
			}
		default:
			b.WriteRune(r)
			in = true
		}
	}
	if in {
		out = append(out, b.String())
	}
	return out
}

// ParseShow parses `systemctl show -p ...` output: Key=Value lines.
func ParseShow(out string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(strings.TrimRight(line, "\r"), "="); ok && k != "" {
			m[k] = v
		}
	}
	return m
}

// expandSpecifiers resolves the unit specifiers doctor needs (%H host
// name, %% a percent sign); others are left as written.
func expandSpecifiers(s, host string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch s[i] {
		case 'H':
			b.WriteString(host)
		case '%':
			b.WriteByte('%')
		default:
			b.WriteByte('%')
			b.WriteByte(s[i])
		}
	}
	return b.String()
}
