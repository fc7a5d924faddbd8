// Package config loads wactl's configuration: defaults, then a YAML file,
// then WACTL_* environment variables (and the names the old service's systemd
// units set), then command-line flags — decoded into a typed struct and
// validated so that every problem names its key and the fix.
package config

import "time"

// Config is the whole effective configuration.
type Config struct {
	DataDir    string         `mapstructure:"data_dir"`
	InstanceID string         `mapstructure:"instance_id"`
	Log        LogConfig      `mapstructure:"log"`
	HTTP       HTTPConfig     `mapstructure:"http"`
	Sessions   SessionsConfig `mapstructure:"sessions"`
	Store      StoreConfig    `mapstructure:"store"`
	WhatsApp   WhatsAppConfig `mapstructure:"whatsapp"`
	Daemon     DaemonConfig   `mapstructure:"daemon"`
	API        APIConfig      `mapstructure:"api"`
	Outbox     OutboxConfig   `mapstructure:"outbox"`
	Lock       LockConfig     `mapstructure:"lock"`
}

type APIConfig struct {
	FirebaseProjectID string   `mapstructure:"firebase_project_id"`
	FirebaseKeyURL    string   `mapstructure:"firebase_key_url"`
	ServiceToken      string   `mapstructure:"service_token"`
	AdminUIDs         []string `mapstructure:"admin_uids"`
	AdminEmails       []string `mapstructure:"admin_emails"`
	AdminClaim        string   `mapstructure:"admin_claim"`
	AllowedUIDs       []string `mapstructure:"allowed_uids"`
	AllowedEmails     []string `mapstructure:"allowed_emails"`
	MaxAccounts       int      `mapstructure:"max_accounts"`
	CORSOrigins       []string `mapstructure:"cors_origins"`
	RatePerMinute     int      `mapstructure:"rate_per_minute"`
	RateBurst         int      `mapstructure:"rate_burst"`
	MaxBodyBytes      int      `mapstructure:"max_body_bytes"`
	// Issue 16: who may use the API, and the failed-authentication throttle.
	AllowAnonymous        bool `mapstructure:"allow_anonymous"`
	AllowUnverifiedEmail  bool `mapstructure:"allow_unverified_email"`
	AuthFailuresPerMinute int  `mapstructure:"auth_failures_per_minute"`
}

// Enabled reports whether the app's API has a way to authenticate callers.
func (a APIConfig) Enabled() bool { return a.FirebaseProjectID != "" || a.ServiceToken != "" }

type OutboxConfig struct {
	Interval    time.Duration `mapstructure:"interval"`
	Lease       time.Duration `mapstructure:"lease"`
	MaxAttempts int           `mapstructure:"max_attempts"`
}

type WhatsAppConfig struct {
	VersionOverride string        `mapstructure:"version_override"`
	StaleAfter      time.Duration `mapstructure:"stale_after"`
}

type DaemonConfig struct {
	TrimStartupMemory bool `mapstructure:"trim_startup_memory"`
}

type LogConfig struct {
	Level  string `mapstructure:"level"`
	Format string `mapstructure:"format"`
}

type HTTPConfig struct {
	Host           string   `mapstructure:"host"`
	Port           int      `mapstructure:"port"`
	StatusToken    string   `mapstructure:"status_token"`
	TrustedProxies []string `mapstructure:"trusted_proxies"`
}

type SessionsConfig struct {
	Path               string        `mapstructure:"path"`
	Namespace          string        `mapstructure:"namespace"`
	DefaultCountryCode string        `mapstructure:"default_country_code"`
	Replica            string        `mapstructure:"replica"`
	ReplicaKeyFile     string        `mapstructure:"replica_key_file"`
	ReplicaInterval    time.Duration `mapstructure:"replica_interval"`
	Store              string        `mapstructure:"store"`
	PostgresDSN        string        `mapstructure:"postgres_dsn"`
	PostgresMaxConns   int           `mapstructure:"postgres_max_conns"`
	PostgresTimeout    time.Duration `mapstructure:"postgres_timeout"`
}

type StoreConfig struct {
	Backend      string          `mapstructure:"backend"`
	Path         string          `mapstructure:"path"`
	StrongDedupe bool            `mapstructure:"strong_dedupe"`
	Firestore    FirestoreConfig `mapstructure:"firestore"`
}

type FirestoreConfig struct {
	ProjectID       string `mapstructure:"project_id"`
	Database        string `mapstructure:"database"`
	EmulatorHost    string `mapstructure:"emulator_host"`
	CredentialsFile string `mapstructure:"credentials_file"`
}

type LockConfig struct {
	Backend       string        `mapstructure:"backend"`
	Document      string        `mapstructure:"document"`
	TTL           time.Duration `mapstructure:"ttl"`
	RenewInterval time.Duration `mapstructure:"renew_interval"`
	SafetyMargin  time.Duration `mapstructure:"safety_margin"`
	RetryInterval time.Duration `mapstructure:"retry_interval"`
}

// ListenAddr is host:port for the HTTP server.
func (c *Config) ListenAddr() string {
	return joinHostPort(c.HTTP.Host, c.HTTP.Port)
}

// LockBackend resolves "auto" to the store's backend.
func (c *Config) LockBackend() string {
	if c.Lock.Backend == "auto" || c.Lock.Backend == "" {
		return c.Store.Backend
	}
	return c.Lock.Backend
}
