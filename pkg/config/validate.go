package config

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"regexp"
	"strings"
)

var (
	namespaceRE   = regexp.MustCompile(`^[a-z0-9]{1,32}$`)
	countryCodeRE = regexp.MustCompile(`^[1-9][0-9]{0,2}$`)
	docPathRE     = regexp.MustCompile(`^[^/]+/[^/]+(/[^/]+/[^/]+)*$`)
	waVersionRE   = regexp.MustCompile(`^[0-9]{1,9}\.[0-9]{1,9}\.[0-9]{1,10}$`)
)

// Validate checks values that decoded fine but cannot work, naming the key
// and the fix for each.
func Validate(c *Config) Problems {
	var p Problems
	oneOf := func(key, val string, allowed ...string) {
		for _, a := range allowed {
			if val == a {
				return
			}
		}
		p.add(key, "", fmt.Sprintf("%q is not one of %s", val, strings.Join(allowed, ", ")))
	}

	if c.InstanceID != "" {
		if len(c.InstanceID) > 128 || strings.IndexFunc(c.InstanceID, func(r rune) bool { return !validIDRune(r) }) >= 0 {
			p.add("instance_id", "", fmt.Sprintf("%q may only contain letters, digits, '-', '_' and '.' (at most 128)", c.InstanceID))
		}
	}
	oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	oneOf("log.format", c.Log.Format, "auto", "text", "json")

	if c.HTTP.Port < 1 || c.HTTP.Port > 65535 {
		p.add("http.port", "", fmt.Sprintf("%d is out of range; use a port from 1 to 65535 (8080 by default)", c.HTTP.Port))
	}
	if c.HTTP.Host == "" {
		p.add("http.host", "", "is empty; use 127.0.0.1 for local access or 0.0.0.0 for all interfaces")
	} else if net.ParseIP(c.HTTP.Host) == nil && !validHostname(c.HTTP.Host) {
		p.add("http.host", "", fmt.Sprintf("%q is neither an IP address nor a host name", c.HTTP.Host))
	}

	for _, t := range []struct{ key, val string }{{"api.service_token", c.API.ServiceToken}, {"http.status_token", c.HTTP.StatusToken}} {
		if n := len(t.val); n > 0 && n < MinTokenLength {
			p.add(t.key, "", fmt.Sprintf("is %d characters; use at least %d random characters (e.g. `openssl rand -hex 32`)", n, MinTokenLength))
		}
	}
	if _, err := ParseTrustedProxies(c.HTTP.TrustedProxies); err != nil {
		p.add("http.trusted_proxies", "", err.Error())
	}

	for key, path := range map[string]string{"sessions.path": c.Sessions.Path, "store.path": c.Store.Path} {
		if path != "" && !filepath.IsAbs(path) {
			p.add(key, "", fmt.Sprintf("%q is relative; use an absolute path, or leave it unset to use data_dir", path))
		}
	}
	if !namespaceRE.MatchString(c.Sessions.Namespace) {
		p.add("sessions.namespace", "", fmt.Sprintf("%q must be 1-32 lower-case letters or digits (e.g. prod)", c.Sessions.Namespace))
	}
	if !countryCodeRE.MatchString(c.Sessions.DefaultCountryCode) {
		p.add("sessions.default_country_code", "", fmt.Sprintf("%q must be 1-3 digits without + (e.g. 40)", c.Sessions.DefaultCountryCode))
	}

	validateReplica(c, &p)
	validateSessionsStore(c, &p)
	oneOf("store.backend", c.Store.Backend, "embedded", "firestore")
	oneOf("lock.backend", c.Lock.Backend, "auto", "embedded", "firestore")
	if c.Store.Backend == "firestore" || c.LockBackend() == "firestore" {
		if c.Store.Firestore.ProjectID == "" {
			p.add("store.firestore.project_id", "", "is required with Firestore; set it or GOOGLE_CLOUD_PROJECT")
		}
	}
	if h := c.Store.Firestore.EmulatorHost; h != "" {
		if _, port, err := net.SplitHostPort(strings.TrimPrefix(h, "http://")); err != nil || port == "" {
			p.add("store.firestore.emulator_host", "", fmt.Sprintf("%q must be host:port, e.g. 127.0.0.1:8686", h))
		}
	}
	if !docPathRE.MatchString(c.Lock.Document) {
		p.add("lock.document", "", fmt.Sprintf("%q is not a document path (collection/doc[/collection/doc…])", c.Lock.Document))
	}

	if v := c.WhatsApp.VersionOverride; v != "" && !waVersionRE.MatchString(v) {
		p.add("whatsapp.version_override", "", fmt.Sprintf("%q must be three numbers separated by dots, e.g. 2.3000.1029496374", v))
	}

	if u := c.API.FirebaseKeyURL; !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://127.0.0.1") && !strings.HasPrefix(u, "http://localhost") {
		p.add("api.firebase_key_url", "", fmt.Sprintf("%q must be an https URL (plain http only on loopback)", u))
	}
	if c.API.MaxAccounts < 1 {
		p.add("api.max_accounts", "", fmt.Sprintf("%d must be at least 1 (default 30)", c.API.MaxAccounts))
	}
	if c.API.MaxBodyBytes < 1024 {
		p.add("api.max_body_bytes", "", fmt.Sprintf("%d is too small; use at least 1024 (default 65536)", c.API.MaxBodyBytes))
	}
	if c.Outbox.MaxAttempts < 1 {
		p.add("outbox.max_attempts", "", fmt.Sprintf("%d must be at least 1 (default 8)", c.Outbox.MaxAttempts))
	}

	l := c.Lock
	if l.TTL > 0 && l.SafetyMargin > 0 && l.SafetyMargin >= l.TTL {
		p.add("lock.safety_margin", "", fmt.Sprintf("%s must be shorter than lock.ttl (%s)", l.SafetyMargin, l.TTL))
	}
	if l.TTL > 0 && l.RenewInterval > 0 && l.RenewInterval >= l.TTL-l.SafetyMargin {
		p.add("lock.renew_interval", "", fmt.Sprintf("%s must be shorter than lock.ttl - lock.safety_margin (%s), or the holder steps down between renewals",
			l.RenewInterval, l.TTL-l.SafetyMargin))
	}
	return p
}

// MinTokenLength is the shortest bearer token accepted: the service token
// acts as admin, so it must not be guessable.
const MinTokenLength = 32

// ParseTrustedProxies turns http.trusted_proxies (IPs or CIDRs) into
// prefixes.
func ParseTrustedProxies(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is neither an IP address nor a CIDR (e.g. 127.0.0.1 or 10.0.0.0/8)", s)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

func validHostname(h string) bool {
	if len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

func joinHostPort(host string, port int) string {
	return net.JoinHostPort(host, fmt.Sprint(port))
}
