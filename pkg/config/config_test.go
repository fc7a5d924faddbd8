package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// env builds an injected environment.
func env(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func files(m map[string]string) func(string) ([]byte, error) {
	return func(p string) ([]byte, error) {
		if s, ok := m[p]; ok {
			return []byte(s), nil
		}
		return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
	}
}

func opts(e func(string) (string, bool), f map[string]string) LoadOptions {
	return LoadOptions{
		LookupEnv: e,
		ReadFile:  files(f),
		Getwd:     func() (string, error) { return "/work", nil },
		Hostname:  func() (string, error) { return "Web-1.example.com", nil },
		MachineID: func() (string, error) { return "0123456789abcdef0123456789abcdef", nil },
	}
}

func mustLoad(t *testing.T, o LoadOptions) *Loaded {
	t.Helper()
	l, err := Load(o)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return l
}

func TestDefaultsMakeEmbeddedModeWork(t *testing.T) {
	l := mustLoad(t, opts(env(), nil))
	c := l.Config
	if c.DataDir != "/work/wactl-data" || c.Sessions.Path != "/work/wactl-data/sessions" || c.Store.Path != "/work/wactl-data/wactl.db" {
		t.Fatalf("paths: %+v", c)
	}
	if c.ListenAddr() != "127.0.0.1:8080" || c.Store.Backend != "embedded" || c.LockBackend() != "embedded" {
		t.Fatalf("listen/backends: %s %s %s", c.ListenAddr(), c.Store.Backend, c.LockBackend())
	}
	if c.InstanceID != "web-1.example.com" || l.Origins["instance_id"].Source != SourceDerived {
		t.Fatalf("instance id %q from %v", c.InstanceID, l.Origins["instance_id"])
	}
	if c.Lock.TTL != 20*time.Second || c.Lock.RenewInterval != 5*time.Second || c.Lock.SafetyMargin != 5*time.Second {
		t.Fatalf("lock defaults: %+v", c.Lock)
	}
	if l.File != "" {
		t.Fatalf("no file expected, got %s", l.File)
	}
}

func TestStateDirectoryIsTheDataDir(t *testing.T) {
	l := mustLoad(t, opts(env("STATE_DIRECTORY", "/var/lib/wactl:/var/lib/other"), nil))
	if l.Config.DataDir != "/var/lib/wactl" || l.Config.Sessions.Path != "/var/lib/wactl/sessions" {
		t.Fatalf("%+v", l.Config)
	}
	if o := l.Origins["data_dir"]; o.Source != SourceEnv || o.Detail != "STATE_DIRECTORY" {
		t.Fatalf("origin %+v", o)
	}
}

func TestPrecedenceFileEnvFlagAlias(t *testing.T) {
	file := "http:\n  port: 7000\n  host: 0.0.0.0\nsessions:\n  path: /from/file\nlog:\n  level: debug\n"
	fm := map[string]string{"/etc/wactl/config.yaml": file}

	// file only
	l := mustLoad(t, opts(env(), fm))
	if l.Config.HTTP.Port != 7000 || l.Origins["http.port"].Source != SourceFile || l.File != "/etc/wactl/config.yaml" {
		t.Fatalf("file: %d %+v", l.Config.HTTP.Port, l.Origins["http.port"])
	}
	// legacy alias beats the file
	l = mustLoad(t, opts(env("PORT", "9000", "SESSIONS_PATH", "/x"), fm))
	if l.Config.HTTP.Port != 9000 || l.Config.Sessions.Path != "/x" {
		t.Fatalf("alias: %+v", l.Config)
	}
	if o := l.Origins["http.port"]; o.Source != SourceEnv || o.Detail != "PORT" {
		t.Fatalf("alias origin %+v", o)
	}
	// WACTL_ beats the legacy alias
	l = mustLoad(t, opts(env("PORT", "9000", "WACTL_HTTP_PORT", "9100"), fm))
	if l.Config.HTTP.Port != 9100 || l.Origins["http.port"].Detail != "WACTL_HTTP_PORT" {
		t.Fatalf("wactl env: %d %+v", l.Config.HTTP.Port, l.Origins["http.port"])
	}
	// flag beats everything
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	fs.Int("port", 8080, "")
	fs.Int("unset", 0, "")
	if err := fs.Parse([]string{"--port", "9200"}); err != nil {
		t.Fatal(err)
	}
	o := opts(env("PORT", "9000", "WACTL_HTTP_PORT", "9100"), fm)
	o.Flags, o.FlagKeys = fs, map[string]string{"port": "http.port", "unset": "log.level"}
	l = mustLoad(t, o)
	if l.Config.HTTP.Port != 9200 || l.Origins["http.port"] != (Origin{SourceFlag, "--port"}) {
		t.Fatalf("flag: %d %+v", l.Config.HTTP.Port, l.Origins["http.port"])
	}
	if l.Config.Log.Level != "debug" || l.Origins["log.level"].Source != SourceFile {
		t.Fatalf("unset flag must not override the file: %q %+v", l.Config.Log.Level, l.Origins["log.level"])
	}
}

func TestExplicitConfigFileWinsOverSearch(t *testing.T) {
	fm := map[string]string{
		"/etc/wactl/config.yaml": "http:\n  port: 1111\n",
		"/tmp/mine.yaml":         "http:\n  port: 2222\n",
	}
	o := opts(env(), fm)
	o.ConfigFile = "/tmp/mine.yaml"
	if l := mustLoad(t, o); l.Config.HTTP.Port != 2222 {
		t.Fatalf("got %d", l.Config.HTTP.Port)
	}
	o.ConfigFile = "/nope.yaml"
	_, err := Load(o)
	if err == nil || !strings.Contains(err.Error(), "/nope.yaml") {
		t.Fatalf("missing explicit file must fail naming it: %v", err)
	}
	// ./wactl.yaml is found when /etc has none
	o = opts(env(), map[string]string{"wactl.yaml": "http:\n  port: 3333\n"})
	if l := mustLoad(t, o); l.Config.HTTP.Port != 3333 || l.File != "wactl.yaml" {
		t.Fatalf("got %d from %q", l.Config.HTTP.Port, l.File)
	}
}

func TestSecretFromFileVariable(t *testing.T) {
	fm := map[string]string{"/run/creds/project": "my-proj\n"}
	l := mustLoad(t, opts(env("GOOGLE_CLOUD_PROJECT_FILE", "/run/creds/project", "WACTL_STORE_BACKEND", "firestore"), fm))
	if l.Config.Store.Firestore.ProjectID != "my-proj" {
		t.Fatalf("got %q", l.Config.Store.Firestore.ProjectID)
	}
	if o := l.Origins["store.firestore.project_id"]; o.Detail != "GOOGLE_CLOUD_PROJECT_FILE" {
		t.Fatalf("origin %+v", o)
	}
	_, err := Load(opts(env("WACTL_INSTANCE_ID", "a", "WACTL_INSTANCE_ID_FILE", "/x"), fm))
	if err == nil || !strings.Contains(err.Error(), "keep only one") {
		t.Fatalf("both set: %v", err)
	}
	_, err = Load(opts(env("WACTL_INSTANCE_ID_FILE", "/missing"), fm))
	if err == nil || !strings.Contains(err.Error(), "WACTL_INSTANCE_ID_FILE=/missing") {
		t.Fatalf("missing file: %v", err)
	}
}

// problems loads and returns every problem message, failing if none.
func problems(t *testing.T, o LoadOptions) []string {
	t.Helper()
	_, err := Load(o)
	var pe *ProblemsError
	if !errors.As(err, &pe) {
		t.Fatalf("want ProblemsError, got %v", err)
	}
	var out []string
	for _, p := range pe.Problems {
		out = append(out, p.String())
	}
	return out
}

func TestValidationNamesKeyAndFix(t *testing.T) {
	file := strings.Join([]string{
		"http:",
		"  prot: 80",    // typo
		"  port: 70000", // out of range
		"lock:",
		"  ttl: twenty",       // bad duration
		"  renew_interval: 5", // no unit
		"sessions:",
		"  path: relative/dir", // must be absolute
		"store:",
		"  backend: postgres",
		"color: blue",
	}, "\n")
	got := problems(t, opts(env(), map[string]string{"/etc/wactl/config.yaml": file}))
	want := []string{
		`http.prot (/etc/wactl/config.yaml:2): unknown key (did you mean "http.port"?)`,
		`color (/etc/wactl/config.yaml:11): unknown key`,
		`lock.ttl (file /etc/wactl/config.yaml): "twenty" is not a duration; write it with a unit, e.g. 20s`,
		`lock.renew_interval (file /etc/wactl/config.yaml): 5 has no unit; write e.g. 5s`,
		`http.port: 70000 is out of range; use a port from 1 to 65535`,
		`sessions.path: "relative/dir" is relative; use an absolute path`,
		`store.backend: "postgres" is not one of embedded, firestore`,
	}
	all := strings.Join(got, "\n")
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("missing problem %q in:\n%s", w, all)
		}
	}
}

func TestValidationOfEnvAndLockRelations(t *testing.T) {
	got := strings.Join(problems(t, opts(env(
		"PORT", "eighty",
		"WACTL_LOCK_TTL", "10s", "WACTL_LOCK_SAFETY_MARGIN", "10s",
		"WACTL_STORE_BACKEND", "firestore",
		"INSTANCE_ID", "bad id!",
		"WACTL_STORE_STRONG_DEDUPE", "maybe",
	), nil)), "\n")
	for _, w := range []string{
		`http.port (env PORT): "eighty" is not a whole number`,
		`lock.safety_margin: 10s must be shorter than lock.ttl (10s)`,
		`store.firestore.project_id: is required with Firestore; set it or GOOGLE_CLOUD_PROJECT`,
		`instance_id: "bad id!" may only contain`,
		`store.strong_dedupe (env WACTL_STORE_STRONG_DEDUPE): "maybe" is not true or false`,
	} {
		if !strings.Contains(got, w) {
			t.Errorf("missing %q in:\n%s", w, got)
		}
	}
}

func TestBadYAMLAndSectionAsValue(t *testing.T) {
	for name, file := range map[string]string{
		"syntax":  "http: [unclosed\n",
		"scalar":  "just text\n",
		"section": "http: 8080\n",
	} {
		t.Run(name, func(t *testing.T) {
			got := problems(t, opts(env(), map[string]string{"/etc/wactl/config.yaml": file}))
			if len(got) == 0 || !strings.Contains(got[0], "/etc/wactl/config.yaml") {
				t.Fatalf("problem must name the file: %v", got)
			}
		})
	}
}

func TestInstanceIDFallsBackToMachineID(t *testing.T) {
	o := opts(env(), nil)
	o.Hostname = func() (string, error) { return "localhost", nil }
	l := mustLoad(t, o)
	if l.Config.InstanceID != "machine-0123456789ab" || l.Origins["instance_id"].Detail != "/etc/machine-id" {
		t.Fatalf("%q %+v", l.Config.InstanceID, l.Origins["instance_id"])
	}
	l = mustLoad(t, opts(env("INSTANCE_ID", "web-7"), nil))
	if l.Config.InstanceID != "web-7" || l.Origins["instance_id"].Source != SourceEnv {
		t.Fatalf("%q", l.Config.InstanceID)
	}
	// Stable: the same host gives the same id every time.
	a, _, _ := HostInstanceID(o.Hostname, o.MachineID)
	b, _, _ := HostInstanceID(o.Hostname, o.MachineID)
	if a != b {
		t.Fatal("instance id not stable")
	}
}

func TestEntriesCoverEveryKeyAndRedactSecrets(t *testing.T) {
	l := mustLoad(t, opts(env("SESSIONS_PATH", "/x", "PORT", "9000"), nil))
	entries := l.Entries()
	var names []string
	for _, e := range entries {
		names = append(names, e.Key)
		switch e.Key {
		case "sessions.path":
			if e.Value != "/x" || e.Source != SourceEnv || e.Detail != "SESSIONS_PATH" {
				t.Errorf("sessions.path entry %+v", e)
			}
		case "http.port":
			if e.Value != 9000 || e.Source != SourceEnv {
				t.Errorf("http.port entry %+v", e)
			}
		}
	}
	if !reflect.DeepEqual(names, KeyNames()) {
		t.Fatalf("entries %v != keys %v", names, KeyNames())
	}
	// Every struct field is a key and every key a struct field.
	fields := flatten(reflect.ValueOf(Config{}), "")
	var fk []string
	for k := range fields {
		fk = append(fk, k)
	}
	kn := KeyNames()
	sort.Strings(fk)
	sort.Strings(kn)
	if !reflect.DeepEqual(fk, kn) {
		t.Fatalf("struct fields %v != keys %v", fk, kn)
	}

	saved := keys
	t.Cleanup(func() { keys = saved })
	keys = append([]keyDef(nil), keys...)
	for i := range keys {
		if keys[i].Key == "store.firestore.credentials_file" {
			keys[i].Secret = true
		}
	}
	l = mustLoad(t, opts(env("GOOGLE_APPLICATION_CREDENTIALS", "/secret/sa.json"), nil))
	for _, e := range l.Entries() {
		if e.Key == "store.firestore.credentials_file" && e.Value != Redacted {
			t.Fatalf("secret shown: %+v", e)
		}
	}
}

// TestExampleConfigDocumentsEveryKey keeps configs/wactl.example.yaml true:
// it must load without problems and mention every key.
func TestExampleConfigDocumentsEveryKey(t *testing.T) {
	path := filepath.Join("..", "..", "configs", "wactl.example.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	o := opts(env(), map[string]string{path: string(data)})
	o.ConfigFile = path
	mustLoad(t, o)
	fk, err := fileKeys(path, data)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, k := range fk {
		seen[k.key] = true
	}
	for _, k := range KeyNames() {
		if !seen[k] {
			t.Errorf("configs/wactl.example.yaml does not document %s", k)
		}
	}
}

func TestEnvName(t *testing.T) {
	if got := EnvName("store.firestore.project_id"); got != "WACTL_STORE_FIRESTORE_PROJECT_ID" {
		t.Fatal(got)
	}
}
