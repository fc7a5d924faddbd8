package config

import (
	"errors"
	"strings"
)

// HostInstanceID derives a stable instance id from the host: its name, else
// /etc/machine-id. Never random: the lease recognises a restarted process
// by this id, and a random one is what left the old service PASSIVE after
// every restart.
func HostInstanceID(hostname, machineID func() (string, error)) (id, detail string, err error) {
	if h, err := hostname(); err == nil {
		if id := sanitizeID(h); id != "" && id != "localhost" {
			return id, "host name", nil
		}
	}
	if m, err := machineID(); err == nil {
		if id := sanitizeID(m); len(id) >= 12 {
			return "machine-" + id[:12], "/etc/machine-id", nil
		}
	}
	return "", "", errors.New("cannot derive an instance id: no usable host name or /etc/machine-id")
}

// sanitizeID keeps the characters valid in an instance id, so a host name
// such as "web-1.example.com" stays readable.
func sanitizeID(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	var b strings.Builder
	for _, r := range s {
		if validIDRune(r) {
			b.WriteRune(r)
		} else {
			b.WriteRune('-')
		}
	}
	return strings.Trim(b.String(), "-.")
}

func validIDRune(r rune) bool {
	return (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') || r == '-' || r == '_' || r == '.'
}
