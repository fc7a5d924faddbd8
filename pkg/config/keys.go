package config

import "time"

// kind is how a key's value is parsed and validated.
type kind int

const (
	kString kind = iota
	kInt
	kBool
	kDuration
	kList
)

// keyDef describes one configuration key: its default, the legacy
// environment names the old Node service's units set (honoured as aliases),
// and whether it is a secret (redacted by `config show`).
type keyDef struct {
	Key     string
	Kind    kind
	Default any
	Aliases []string
	Secret  bool
	Help    string
}

// Keys lists every key wactl reads. The example config, `config show` and
// validation are all driven from this list, so a key cannot exist in one and
// be missing from another (a test checks configs/wactl.example.yaml).
var keys = []keyDef{
	{Key: "data_dir", Kind: kString, Default: "", Aliases: []string{"STATE_DIRECTORY"},
		Help: "directory for all local state; default $STATE_DIRECTORY, else the running service's (/run/wactl/data_dir), else ./wactl-data"},
	{Key: "instance_id", Kind: kString, Default: "", Aliases: []string{"INSTANCE_ID"},
		Help: "stable name of this instance for the lease; default derived from the host name"},

	{Key: "log.level", Kind: kString, Default: "info", Help: "debug, info, warn or error"},
	{Key: "log.format", Kind: kString, Default: "auto", Help: "auto (text), text or json"},

	{Key: "http.host", Kind: kString, Default: "127.0.0.1", Help: "address the HTTP API listens on"},
	{Key: "http.port", Kind: kInt, Default: 8080, Aliases: []string{"PORT"}, Help: "port the HTTP API listens on"},
	{Key: "http.status_token", Kind: kString, Default: "", Secret: true,
		Help: "bearer token that lets callers other than a direct loopback one read /api/status/dashboard and /metrics; give it as WACTL_HTTP_STATUS_TOKEN_FILE"},
	{Key: "http.trusted_proxies", Kind: kList, Default: []string{},
		Help: "addresses (IPs or CIDRs) of reverse proxies in front of wactl; their requests are never local, even over loopback"},

	{Key: "sessions.path", Kind: kString, Default: "", Aliases: []string{"SESSIONS_PATH"},
		Help: "absolute directory of per-account WhatsApp sessions; default <data_dir>/sessions"},
	{Key: "sessions.namespace", Kind: kString, Default: "prod", Help: "namespace in account ids (account_<namespace>_<hash>)"},
	{Key: "sessions.default_country_code", Kind: kString, Default: "40",
		Help: "country code that replaces a leading 0 in phone numbers"},
	{Key: "sessions.replica", Kind: kString, Default: "off",
		Help: "off, or firestore: the ACTIVE process keeps an age-encrypted copy of each session in Firestore (wa_sessions_v2) so another host takes over without a QR"},
	{Key: "sessions.replica_key_file", Kind: kString, Default: "",
		Help: "age identity file (age-keygen, mode 0600) that encrypts and opens the replica; the same key on every host; never sent to Firestore"},
	{Key: "sessions.replica_interval", Kind: kDuration, Default: 60 * time.Second,
		Help: "a changed session is copied to the replica at most this often"},
	{Key: "sessions.store", Kind: kString, Default: "sqlite",
		Help: "sqlite (one whatsmeow database per account under sessions.path) or postgres (one database shared by every host: sessions.postgres_dsn)"},
	{Key: "sessions.postgres_dsn", Kind: kString, Default: "", Secret: true,
		Help: "PostgreSQL connection string of the shared device store (sessions.store: postgres); give it as WACTL_SESSIONS_POSTGRES_DSN_FILE"},
	{Key: "sessions.postgres_max_conns", Kind: kInt, Default: 8,
		Help: "connections the PostgreSQL device store's pool may open (plus one that holds the account locks)"},
	{Key: "sessions.postgres_timeout", Kind: kDuration, Default: 15 * time.Second,
		Help: "bound of every PostgreSQL device-store statement, lock wait and connect"},

	{Key: "store.backend", Kind: kString, Default: "embedded", Help: "embedded (SQLite under data_dir) or firestore"},
	{Key: "store.path", Kind: kString, Default: "",
		Help: "absolute path of the embedded SQLite database; default <data_dir>/wactl.db"},
	{Key: "store.strong_dedupe", Kind: kBool, Default: false,
		Help: "also skip messages with another id but the same content fingerprint in a thread"},
	{Key: "store.firestore.project_id", Kind: kString, Default: "",
		Aliases: []string{"GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT"}, Help: "Google Cloud project of the Firestore database"},
	{Key: "store.firestore.database", Kind: kString, Default: "(default)", Help: "Firestore database id"},
	{Key: "store.firestore.emulator_host", Kind: kString, Default: "",
		Aliases: []string{"FIRESTORE_EMULATOR_HOST"}, Help: "host:port of a Firestore emulator instead of production"},
	{Key: "store.firestore.credentials_file", Kind: kString, Default: "",
		Aliases: []string{"GOOGLE_APPLICATION_CREDENTIALS"},
		Help:    "service-account JSON file; default Application Default Credentials"},

	{Key: "whatsapp.version_override", Kind: kString, Default: "",
		Help: "WhatsApp Web version to announce (e.g. 2.3000.1029496374) when WhatsApp rejects the built-in one (405)"},
	{Key: "whatsapp.stale_after", Kind: kDuration, Default: 5 * time.Minute,
		Help: "a connected account with no event for this long is reported stale and its connection recycled once"},

	{Key: "daemon.trim_startup_memory", Kind: kBool, Default: true,
		Help: "a few seconds after wactl serve starts, give back the executable pages start-up touched once (about 11-15 MB of RSS)"},

	{Key: "api.firebase_project_id", Kind: kString, Default: "",
		Help: "Firebase project whose ID tokens the API accepts; empty accepts none"},
	{Key: "api.firebase_key_url", Kind: kString, Default: "https://www.googleapis.com/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com",
		Help: "certificates that sign Firebase ID tokens"},
	{Key: "api.service_token", Kind: kString, Default: "", Secret: true,
		Help: "bearer token of the Cloud Functions (admin); give it as WACTL_API_SERVICE_TOKEN_FILE"},
	{Key: "api.admin_uids", Kind: kList, Default: []string{}, Help: "Firebase UIDs that are admins"},
	{Key: "api.admin_emails", Kind: kList, Default: []string{}, Help: "verified emails that are admins"},
	{Key: "api.admin_claim", Kind: kString, Default: "admin", Help: "custom claim that, when true, makes a user admin"},
	{Key: "api.allowed_uids", Kind: kList, Default: []string{}, Help: "users who may read; empty: every verified user of the project"},
	{Key: "api.allowed_emails", Kind: kList, Default: []string{}, Help: "verified emails who may read"},
	{Key: "api.max_accounts", Kind: kInt, Default: 30, Help: "account limit of add-account"},
	{Key: "api.cors_origins", Kind: kList, Default: []string{}, Help: "browser origins allowed to call the API; empty: none"},
	{Key: "api.rate_per_minute", Kind: kInt, Default: 120, Help: "mutations per minute per authenticated user (negative: no limit)"},
	{Key: "api.rate_burst", Kind: kInt, Default: 30, Help: "burst of mutations per user"},
	{Key: "api.max_body_bytes", Kind: kInt, Default: 65536, Help: "largest request body"},
	{Key: "api.allow_anonymous", Kind: kBool, Default: false, Help: "accept Firebase tokens of anonymous sign-ins"},
	{Key: "api.allow_unverified_email", Kind: kBool, Default: false, Help: "accept Firebase tokens whose e-mail is not verified"},
	{Key: "api.auth_failures_per_minute", Kind: kInt, Default: 60, Help: "failed authentications per client address and minute before 429 (negative: no limit)"},

	{Key: "outbox.interval", Kind: kDuration, Default: 2 * time.Second, Help: "how often the ACTIVE instance polls the outbox"},
	{Key: "outbox.lease", Kind: kDuration, Default: 2 * time.Minute, Help: "claim lease of an outbox item being sent"},
	{Key: "outbox.max_attempts", Kind: kInt, Default: 8, Help: "send attempts before an outbox item is failed"},

	{Key: "lock.backend", Kind: kString, Default: "auto",
		Help: "auto (same as store.backend), embedded (one host) or firestore (several hosts)"},
	{Key: "lock.document", Kind: kString, Default: "wa_metrics/longrun/locks/wa_connection",
		Help: "Firestore document of the lease (shared with the old Node service)"},
	{Key: "lock.ttl", Kind: kDuration, Default: 20 * time.Second, Help: "lease lifetime"},
	{Key: "lock.renew_interval", Kind: kDuration, Default: 5 * time.Second, Help: "how often the holder renews"},
	{Key: "lock.safety_margin", Kind: kDuration, Default: 5 * time.Second,
		Help: "the holder steps down this long before its lease could expire"},
	{Key: "lock.retry_interval", Kind: kDuration, Default: 5 * time.Second,
		Help: "how often a passive instance tries to take the lease"},
}

func lookupKey(key string) (keyDef, bool) {
	for _, k := range keys {
		if k.Key == key {
			return k, true
		}
	}
	return keyDef{}, false
}

// KeyNames returns every configuration key in documentation order.
func KeyNames() []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.Key
	}
	return out
}

// EnvName is the WACTL_* environment variable of a key.
func EnvName(key string) string {
	b := []byte("WACTL_")
	for _, c := range []byte(key) {
		switch {
		case c == '.':
			b = append(b, '_')
		case c >= 'a' && c <= 'z':
			b = append(b, c-'a'+'A')
		default:
			b = append(b, c)
		}
	}
	return string(b)
}
