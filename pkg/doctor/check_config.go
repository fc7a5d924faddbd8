package doctor

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/wactl/wactl/pkg/config"
)

func checkConfigLoad(_ context.Context, env *Env) Result {
	var r Result
	r.add("file", orDefault(env.ConfigFile, "none (defaults and environment)"))
	if env.Config == nil {
		r.fail("configuration could not be loaded: " + errText(env.ConfigErr))
		return r
	}
	r.add("data_dir", env.Config.DataDir)
	r.add("sessions.path", env.Config.Sessions.Path)
	r.add("store.backend", env.Config.Store.Backend)
	r.add("lock.backend", env.Config.LockBackend())
	r.add("http", env.Config.ListenAddr())
	var pe *config.ProblemsError
	if errors.As(env.ConfigErr, &pe) {
		for _, p := range pe.Problems {
			r.note("%s", p.String())
		}
		r.fail(fmt.Sprintf("%d configuration problem(s): %s", len(pe.Problems), pe.Problems[0].String()))
		r.fix(configFix(env, pe))
		return r
	}
	if env.ConfigErr != nil {
		r.fail("configuration: " + env.ConfigErr.Error())
		return r
	}
	if ws := config.ConfigWarnings(env.Config); len(ws) > 0 {
		for _, w := range ws {
			r.note("%s", w.String())
		}
		r.warn(ws[0].Key + ": " + ws[0].Msg)
		fix := Fix{Summary: "change the keys named above", Commands: []string{"wactl config validate"}}
		if ws[0].Key == "api.allowed_uids" {
			fix.Summary = "list who may read conversations in api.allowed_emails or api.allowed_uids (config file or WACTL_API_ALLOWED_EMAILS)"
		}
		r.fix(fix)
		return r
	}
	r.set(OK, "configuration loads and validates")
	return r
}

// configFix is what works for these problems: a file this user may not
// read is read again as root (config show and validate would fail the
// same way); otherwise the file is edited and validated, which names
// each problem's key, origin and fix.
func configFix(env *Env, pe *config.ProblemsError) Fix {
	for _, p := range pe.Problems {
		if strings.Contains(p.String(), "permission denied") {
			return Fix{Summary: "the configuration file is not readable by " + userName(env.Geteuid()) + ": run doctor as root (or as the service user)",
				Commands: []string{"sudo wactl doctor"}}
		}
	}
	cmds := []string{"wactl config validate"}
	if f := firstNonEmpty(pe.File, env.ConfigFile); f != "" {
		cmds = []string{"sudoedit " + shq(f), "wactl config validate"}
	}
	return Fix{Summary: "correct the values named above, then check the file (validate lists each problem with its fix)", Commands: cmds}
}

// containerHostname matches the random 12-hex host names docker gives.
var containerHostname = regexp.MustCompile(`^[0-9a-f]{12}$`)

func checkInstanceID(_ context.Context, env *Env) Result {
	var r Result
	if env.Config == nil {
		r.Status, r.Summary = Skip, "skipped: no configuration"
		return r
	}
	id := env.Config.InstanceID
	o := env.Origins["instance_id"]
	r.add("instance_id", orDash(id))
	r.add("source", strings.TrimSpace(string(o.Source)+" "+o.Detail))
	switch {
	case id == "":
		r.fail("no instance id: set INSTANCE_ID (systemd: Environment=INSTANCE_ID=wactl-%H)")
	case o.Source == config.SourceDerived && o.Detail == "host name" && containerHostname.MatchString(env.Hostname):
		r.warn(fmt.Sprintf("instance id comes from host name %q, which looks like a container id that changes when the container is recreated", env.Hostname))
		r.note("a changed instance id waits for the old lease to expire (PASSIVE) after every redeploy")
	case o.Source == config.SourceDerived:
		r.set(OK, fmt.Sprintf("instance id %s from the %s (stable across restarts)", id, o.Detail))
		r.note("set INSTANCE_ID explicitly (systemd Environment=INSTANCE_ID=wactl-%%H) to keep it if the host is renamed")
	default:
		r.set(OK, fmt.Sprintf("instance id %s set by %s", id, strings.TrimSpace(string(o.Source)+" "+o.Detail)))
	}
	return r
}

func checkLegacyEnv(_ context.Context, env *Env) Result {
	var r Result
	if env.Config == nil {
		r.Status, r.Summary = Skip, "skipped: no configuration"
		return r
	}
	var legacy []string
	for key, o := range env.Origins {
		name := strings.TrimSuffix(o.Detail, "_FILE")
		if o.Source == config.SourceEnv && !strings.HasPrefix(name, "WACTL_") {
			legacy = append(legacy, name+" → "+key)
		}
	}
	sort.Strings(legacy)
	for _, l := range legacy {
		n, k, _ := strings.Cut(l, " → ")
		r.add(n, k)
	}
	if len(legacy) == 0 {
		r.set(OK, "no legacy environment names in effect")
	} else {
		r.set(OK, fmt.Sprintf("%d legacy environment name(s) in effect (honoured as aliases)", len(legacy)))
	}
	return r
}

func errText(err error) string {
	if err == nil {
		return "unknown error"
	}
	return err.Error()
}
