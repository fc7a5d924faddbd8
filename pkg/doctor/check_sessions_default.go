package doctor

import (
	"fmt"

	"github.com/wactl/wactl/pkg/config"
)

// sessionsDirAskedFor reports whether someone named the sessions dir (a
// flag, a variable, a config file, the running service's published data
// dir) rather than it being the built-in default, ./wactl-data in the
// working directory; why says who named it. doctor --fix creates only a
// dir it was told about: a diagnosis run from the wrong directory must
// not leave a data dir there (issue 17).
func (env *Env) sessionsDirAskedFor() (asked bool, why string) {
	if env.Origins == nil {
		return true, "as configured"
	}
	if or, ok := env.Origins["sessions.path"]; ok && or.Source != config.SourceDerived && or.Source != config.SourceDefault {
		return true, "sessions.path from " + describeOrigin(or)
	}
	or, ok := env.Origins["data_dir"]
	if !ok || or.Source == config.SourceDefault {
		return false, ""
	}
	return true, "data_dir from " + describeOrigin(or)
}

func describeOrigin(or config.Origin) string {
	if or.Detail == "" {
		return string(or.Source)
	}
	return string(or.Source) + " " + or.Detail
}

// notConfigured is sessions.dir when no data dir is configured and the
// default one does not exist: nothing is wrong with a dir nobody asked
// for, and doctor creates nothing; it says where wactl looks and how to
// name the dir.
func notConfigured(env *Env, r Result, dir string) Result {
	data := env.Config.DataDir
	r.warn(fmt.Sprintf("no data dir is configured: %s is only the default (./wactl-data in the working directory) and does not exist; nothing was created", dir))
	r.note("wactl takes the data dir from --data-dir, WACTL_DATA_DIR, data_dir in the config file (WACTL_CONFIG, /etc/wactl/config.yaml), $STATE_DIRECTORY, or the running service's %s/%s",
		config.RuntimeDir(nil), config.RuntimeDataDirFile)
	if hint := config.ServiceHint(data, "doctor"); hint != "" {
		r.note("%s", hint)
	}
	r.fix(Fix{Summary: "name the data dir, and doctor --fix creates it (the default here is shown; use the data dir of your wactl serve)",
		Commands: []string{"wactl doctor --fix --data-dir " + shq(data)}})
	return r
}
