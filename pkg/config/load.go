package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// Source says which layer gave a key its effective value.
type Source string

const (
	SourceDefault Source = "default"
	SourceFile    Source = "file"
	SourceEnv     Source = "env"
	SourceFlag    Source = "flag"
	SourceDerived Source = "derived" // computed from another key or the host
)

// Origin is where one key's value came from, e.g. {env, "PORT"}.
type Origin struct {
	Source Source
	Detail string // variable, flag or file name; derivation
}

// DefaultSearchPaths are tried in order when no --config is given.
var DefaultSearchPaths = []string{"/etc/wactl/config.yaml", "wactl.yaml"}

// LoadOptions are the inputs of Load. Zero values mean the real process
// environment; tests inject their own.
type LoadOptions struct {
	ConfigFile  string            // --config; empty: search DefaultSearchPaths
	SearchPaths []string          // overrides DefaultSearchPaths
	Flags       *pflag.FlagSet    // command-line flags
	FlagKeys    map[string]string // flag name → config key, for flags that set keys
	LookupEnv   func(string) (string, bool)
	ReadFile    func(string) ([]byte, error)
	Getwd       func() (string, error)
	Hostname    func() (string, error)
	MachineID   func() (string, error)
	Stat        func(string) (fs.FileInfo, error) // the config file's mode; default os.Stat
}

// Loaded is the effective configuration with the origin of every key.
type Loaded struct {
	Config  Config
	File    string // config file that was read; empty when none
	Origins map[string]Origin
	// Warnings are not errors: the configuration works, but should be
	// changed (a readable secret, an empty secret file, no allowlist).
	Warnings Problems
}

// Load reads every layer, decodes and validates. On problems it returns the
// partially loaded configuration together with a *ProblemsError listing all
// of them, so `config show` and `config validate` can still report.
func Load(o LoadOptions) (*Loaded, error) {
	o.fill()
	v := viper.New()
	v.SetConfigType("yaml")
	l := &Loaded{Origins: map[string]Origin{}}
	var probs Problems

	for _, k := range keys {
		v.SetDefault(k.Key, k.Default)
		l.Origins[k.Key] = Origin{Source: SourceDefault}
	}

	// Layer 2: the config file.
	file, data, err := o.findFile()
	if err != nil {
		probs.add("", "", err.Error())
	} else if file != "" {
		l.File = file
		fileKeys, err := fileKeys(file, data)
		if err != nil {
			probs.add("", file, err.Error())
		} else {
			for _, fk := range fileKeys {
				if _, ok := lookupKey(fk.key); !ok {
					probs.add(fk.key, fmt.Sprintf("%s:%d", file, fk.line), unknownKeyMsg(fk.key))
					continue
				}
				l.Origins[fk.key] = Origin{Source: SourceFile, Detail: file}
			}
			if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
				probs.add("", file, "cannot parse: "+err.Error())
			} else if st, err := o.Stat(file); err == nil {
				l.Warnings = append(l.Warnings, inlineSecretWarnings(file, st.Mode(), v.GetString)...)
			}
		}
	}

	// Layer 3: the environment. WACTL_* wins over the legacy aliases, and a
	// *_FILE variable supplies the value from a file (for secrets).
	for _, k := range keys {
		name, val, ok, err := o.envValue(k)
		if err != nil {
			probs.add(k.Key, name, err.Error())
			continue
		}
		if ok && val == "" && strings.HasSuffix(name, "_FILE") {
			path, _ := o.LookupEnv(name)
			l.Warnings = append(l.Warnings, emptySecretFileWarning(k.Key, name, path))
		}
		if ok {
			v.Set(k.Key, val)
			l.Origins[k.Key] = Origin{Source: SourceEnv, Detail: name}
		}
	}

	// Layer 4: flags the user actually set.
	if o.Flags != nil {
		o.Flags.VisitAll(func(f *pflag.Flag) {
			key, ok := o.FlagKeys[f.Name]
			if !ok || !f.Changed {
				return
			}
			v.Set(key, f.Value.String())
			l.Origins[key] = Origin{Source: SourceFlag, Detail: "--" + f.Name}
		})
	}

	// Check every value's type before decoding, so that all bad values are
	// reported at once with their origin, not only the first.
	for _, k := range keys {
		if msg := checkKind(k, v.Get(k.Key)); msg != "" {
			probs.add(k.Key, l.Origins[k.Key].describe(), msg)
			v.Set(k.Key, k.Default)
		}
	}

	// Not UnmarshalExact: fileKeys has reported every unknown key already,
	// with its line; the decoder would list them again in its own words.
	if err := v.Unmarshal(&l.Config, viper.DecodeHook(mapstructure.ComposeDecodeHookFunc(
		mapstructure.StringToTimeDurationHookFunc(),
		mapstructure.StringToSliceHookFunc(","),
	))); err != nil {
		probs.add("", "", "decode: "+err.Error())
	}

	o.derive(l, &probs)
	probs = append(probs, Validate(&l.Config)...)
	l.Warnings = append(l.Warnings, ConfigWarnings(&l.Config)...)
	if len(probs) > 0 {
		return l, &ProblemsError{Problems: probs, File: l.File}
	}
	return l, nil
}

func (o *LoadOptions) fill() {
	if o.LookupEnv == nil {
		o.LookupEnv = os.LookupEnv
	}
	if o.Stat == nil {
		o.Stat = os.Stat
	}
	if o.Getwd == nil {
		o.Getwd = os.Getwd
	}
	if o.Hostname == nil {
		o.Hostname = os.Hostname
	}
	if o.MachineID == nil {
		o.MachineID = func() (string, error) {
			b, err := os.ReadFile("/etc/machine-id")
			return strings.TrimSpace(string(b)), err
		}
	}
	if o.SearchPaths == nil {
		o.SearchPaths = DefaultSearchPaths
	}
}

// findFile returns the config file to read: the explicit one (which must
// exist), else the first search path present, else none.
func (o *LoadOptions) findFile() (string, []byte, error) {
	if o.ConfigFile != "" {
		data, err := o.read(o.ConfigFile, MaxConfigFileBytes)
		if err != nil {
			return "", nil, fmt.Errorf("config file %s: %s (check --config / WACTL_CONFIG)", o.ConfigFile, fileErrText(err))
		}
		return o.ConfigFile, data, nil
	}
	for _, p := range o.SearchPaths {
		data, err := o.read(p, MaxConfigFileBytes)
		if err == nil {
			return p, data, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", nil, fmt.Errorf("config file %s: %s", p, fileErrText(err))
		}
	}
	return "", nil, nil
}

// fileErrText is what went wrong reading a file, without repeating its
// path, and for a directory the same advice as for other non-files.
func fileErrText(err error) string {
	if errors.Is(err, syscall.EISDIR) {
		return errNotRegular.Error()
	}
	return unwrapPathErr(err).Error()
}

func unwrapPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func (o *LoadOptions) envValue(k keyDef) (name, val string, ok bool, err error) {
	names := append([]string{EnvName(k.Key)}, k.Aliases...)
	for _, n := range names {
		direct, hasDirect := o.LookupEnv(n)
		fileName, hasFile := o.LookupEnv(n + "_FILE")
		if hasDirect && direct == "" {
			hasDirect = false // systemd's Environment=X= clears a variable
		}
		if hasFile && fileName == "" {
			hasFile = false
		}
		switch {
		case hasDirect && hasFile:
			return n, "", false, fmt.Errorf("both %s and %s_FILE are set; keep only one", n, n)
		case hasFile:
			b, err := o.read(fileName, MaxSecretFileBytes)
			if err != nil {
				return n + "_FILE", "", false, fmt.Errorf("%s_FILE=%s: %v", n, fileName, fileErrText(err))
			}
			return n + "_FILE", strings.TrimRight(string(b), "\r\n"), true, nil
		case hasDirect:
			if n == "STATE_DIRECTORY" {
				// systemd lists several directories separated by colons;
				// the first is the one StateDirectory= created for us.
				direct, _, _ = strings.Cut(direct, ":")
			}
			return n, direct, true, nil
		}
	}
	return "", "", false, nil
}

// derive fills values computed from other keys or from the host, and makes
// the data directory absolute so that a restart from another working
// directory finds the same state.
func (o *LoadOptions) derive(l *Loaded, probs *Problems) {
	c := &l.Config
	if c.DataDir == "" {
		// No file, variable or flag names it: a wactl service running on
		// this host says where its data is (runtime.go).
		if dir, from := RunningServiceDataDir(RuntimeDir(o.LookupEnv), o.ReadFile); dir != "" {
			c.DataDir = dir
			l.Origins["data_dir"] = Origin{Source: SourceDerived, Detail: "the running wactl service (" + from + ")"}
		}
	}
	if c.DataDir == "" {
		c.DataDir = "wactl-data"
		l.Origins["data_dir"] = Origin{Source: SourceDefault, Detail: "./wactl-data"}
	}
	if !filepath.IsAbs(c.DataDir) {
		wd, err := o.Getwd()
		if err != nil {
			probs.add("data_dir", "", "relative and the working directory is unknown: "+err.Error())
		} else {
			c.DataDir = filepath.Join(wd, c.DataDir)
		}
	}
	c.DataDir = filepath.Clean(c.DataDir)
	if c.Sessions.Path == "" {
		c.Sessions.Path = filepath.Join(c.DataDir, "sessions")
		l.Origins["sessions.path"] = Origin{Source: SourceDerived, Detail: "<data_dir>/sessions"}
	}
	if c.Store.Path == "" {
		c.Store.Path = filepath.Join(c.DataDir, "wactl.db")
		l.Origins["store.path"] = Origin{Source: SourceDerived, Detail: "<data_dir>/wactl.db"}
	}
	if c.InstanceID == "" {
		id, detail, err := HostInstanceID(o.Hostname, o.MachineID)
		if err != nil {
			probs.add("instance_id", "", err.Error()+"; set INSTANCE_ID or instance_id")
		}
		c.InstanceID = id
		l.Origins["instance_id"] = Origin{Source: SourceDerived, Detail: detail}
	}
}

func (or Origin) describe() string {
	if or.Detail == "" {
		return string(or.Source)
	}
	return string(or.Source) + " " + or.Detail
}

// checkKind reports a value that cannot be decoded as the key's type, in
// words an operator can act on.
func checkKind(k keyDef, val any) string {
	switch k.Kind {
	case kString:
		switch val.(type) {
		case string, nil:
			return ""
		case int, int64, float64, bool:
			return "" // YAML scalars such as a numeric country code are fine as text
		}
		return fmt.Sprintf("must be a single value, not %s", describeType(val))
	case kInt:
		switch x := val.(type) {
		case int, int64:
			return ""
		case float64:
			if x == float64(int64(x)) {
				return ""
			}
		case string:
			var n int64
			if _, err := fmt.Sscanf(x, "%d", &n); err == nil && fmt.Sprint(n) == strings.TrimSpace(x) {
				return ""
			}
			return fmt.Sprintf("%q is not a whole number", x)
		}
		return fmt.Sprintf("must be a whole number, not %s", describeType(val))
	case kBool:
		switch x := val.(type) {
		case bool:
			return ""
		case string:
			switch strings.ToLower(x) {
			case "true", "false", "1", "0", "yes", "no":
				return ""
			}
			return fmt.Sprintf("%q is not true or false", x)
		}
		return fmt.Sprintf("must be true or false, not %s", describeType(val))
	case kDuration:
		switch x := val.(type) {
		case time.Duration:
			return ""
		case string:
			d, err := time.ParseDuration(x)
			if err != nil {
				return fmt.Sprintf("%q is not a duration; write it with a unit, e.g. 20s, 1m30s", x)
			}
			if d <= 0 {
				return fmt.Sprintf("%q must be positive", x)
			}
			return ""
		case int, int64, float64:
			return fmt.Sprintf("%v has no unit; write e.g. %vs", x, x)
		}
		return fmt.Sprintf("must be a duration such as 20s, not %s", describeType(val))
	case kList:
		switch val.(type) {
		case []any, []string, string, nil:
			return ""
		}
		return fmt.Sprintf("must be a list, not %s", describeType(val))
	}
	return ""
}

func describeType(val any) string {
	switch val.(type) {
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	case nil:
		return "empty"
	}
	return "a " + reflect.TypeOf(val).String()
}
