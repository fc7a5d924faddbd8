package doctor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// referenceHardening is the [Service] hardening of configs/wactl.service
// (a test keeps the two in step).
var referenceHardening = map[string]string{
	"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
	"PrivateDevices": "yes", "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes",
	"ProtectKernelLogs": "yes", "ProtectControlGroups": "yes", "ProtectClock": "yes",
	"ProtectHostname": "yes", "ProtectProc": "invisible", "ProcSubset": "pid",
	"RestrictNamespaces": "yes", "RestrictRealtime": "yes", "RestrictSUIDSGID": "yes",
	"LockPersonality": "yes", "MemoryDenyWriteExecute": "yes", "RemoveIPC": "yes",
	"SystemCallArchitectures": "native", "UMask": "0077",
}

func checkSystemdService(ctx context.Context, env *Env) Result {
	var r Result
	sd := env.systemd(ctx)
	if sd.Err != nil {
		r.Status, r.Summary = Skip, "skipped: "+sd.Err.Error()
		return r
	}
	p := sd.Props
	r.add("unit", env.Unit+".service")
	r.add("LoadState", p["LoadState"])
	if p["LoadState"] != "loaded" {
		r.warn(fmt.Sprintf("unit %s.service is not installed (LoadState=%s)", env.Unit, p["LoadState"]))
		// The package installs the unit; elsewhere it is wactl.service of
		// the release tarball (configs/ of a source checkout).
		r.fix(Fix{Summary: "install the unit: the wactl package has it; without the package, wactl.service from the release tarball", Commands: []string{
			"sudo apt install ./wactl_*.deb   # or, from the unpacked tarball:",
			"sudo install -m 0644 wactl.service /etc/systemd/system/" + env.Unit + ".service",
			"sudo systemctl daemon-reload && sudo systemctl enable --now " + env.Unit,
		}})
		return r
	}
	r.add("ActiveState", p["ActiveState"]+"/"+p["SubState"])
	r.add("MainPID", p["MainPID"])
	if m, err := strconv.ParseUint(p["MemoryCurrent"], 10, 64); err == nil {
		r.add("memory", fmt.Sprintf("%.0fMB", float64(m)/(1<<20)))
	}
	if p["NRestarts"] != "" {
		r.add("NRestarts", p["NRestarts"])
	}
	r.add("User", orDash(p["User"]))
	env.addServiceEnv(&r, p)
	if p["ActiveState"] != "active" {
		r.fail(fmt.Sprintf("service %s is %s/%s, not running", env.Unit, p["ActiveState"], p["SubState"]))
		r.fix(Fix{Summary: "see why it stopped, then start it", Commands: []string{
			"sudo journalctl -u " + env.Unit + " -n 50 --no-pager",
			"sudo systemctl start " + env.Unit,
		}})
		return r
	}
	if n, _ := strconv.Atoi(p["NRestarts"]); n > 3 {
		r.warn(fmt.Sprintf("service restarted %d times since it was started", n))
	}
	r.set(OK, fmt.Sprintf("%s.service active, pid %s", env.Unit, p["MainPID"]))
	return r
}

// addServiceEnv reports the service's effective sessions path and instance
// id, and warns when doctor looks at another sessions dir than the service.
func (env *Env) addServiceEnv(r *Result, p map[string]string) {
	vars := map[string]string{}
	for _, w := range SplitQuoted(p["Environment"]) {
		if k, v, ok := strings.Cut(w, "="); ok {
			vars[k] = v
		}
	}
	inst := firstNonEmpty(vars["WACTL_INSTANCE_ID"], vars["INSTANCE_ID"])
	r.add("INSTANCE_ID", orDash(inst))
	sp := firstNonEmpty(vars["WACTL_SESSIONS_PATH"], vars["SESSIONS_PATH"])
	r.add("SESSIONS_PATH", orDash(sp))
	if sp != "" && env.Config != nil && filepath.Clean(sp) != env.Config.Sessions.Path {
		r.warn(fmt.Sprintf("the service uses sessions dir %s but doctor checks %s", sp, env.Config.Sessions.Path))
		r.note("run doctor with the service's environment, e.g. sudo SESSIONS_PATH=%s wactl doctor", sp)
	}
}

// unitSettings are the effective settings of the unit file.
type unitSettings struct {
	env          map[string]string
	sessions     string // the sessions dir the service will use
	sessionsFrom string
}

func (env *Env) settingsOf(u *UnitFile) unitSettings {
	s := unitSettings{env: map[string]string{}}
	for k, v := range u.Env() {
		s.env[k] = expandSpecifiers(v, env.Hostname)
	}
	state := u.List("Service", "StateDirectory")
	switch {
	case s.env["WACTL_SESSIONS_PATH"] != "":
		s.sessions, s.sessionsFrom = s.env["WACTL_SESSIONS_PATH"], "Environment=WACTL_SESSIONS_PATH"
	case s.env["SESSIONS_PATH"] != "":
		s.sessions, s.sessionsFrom = s.env["SESSIONS_PATH"], "Environment=SESSIONS_PATH"
	case s.env["WACTL_DATA_DIR"] != "":
		s.sessions, s.sessionsFrom = filepath.Join(s.env["WACTL_DATA_DIR"], "sessions"), "Environment=WACTL_DATA_DIR"
	case len(state) > 0:
		s.sessions, s.sessionsFrom = filepath.Join("/var/lib", state[0], "sessions"), "StateDirectory="+state[0]
	}
	return s
}

func checkSystemdUnit(ctx context.Context, env *Env) Result {
	var r Result
	u := env.unitFile(ctx)
	if u.err != nil {
		if errors.Is(u.err, fs.ErrNotExist) {
			r.Status, r.Summary = Skip, "skipped: no unit file at "+u.path
		} else {
			r.Status, r.Summary = Skip, "skipped: cannot read the unit file: "+u.err.Error()
		}
		return r
	}
	f := u.file
	r.add("unit_file", u.path)
	if len(u.dropIns) > 0 {
		r.add("drop_ins", strings.Join(u.dropIns, " "))
	}
	st := env.settingsOf(f)
	var dropIn []string // [Service] lines of the override that fixes what is wrong

	inst := firstNonEmpty(st.env["WACTL_INSTANCE_ID"], st.env["INSTANCE_ID"])
	r.add("INSTANCE_ID", orDash(inst))
	if inst == "" {
		r.warn("INSTANCE_ID is not set in the unit: the instance id then follows the host name")
		dropIn = append(dropIn, "Environment=INSTANCE_ID=wactl-%H") // never the old service's %H
	}
	ks := f.Last("Service", "KillSignal")
	r.add("KillSignal", orDefault(ks, "SIGTERM (default)"))
	if ks != "" && ks != "SIGINT" && ks != "SIGTERM" && ks != "INT" && ks != "TERM" && ks != "2" && ks != "15" {
		r.fail(fmt.Sprintf("KillSignal=%s: wactl only shuts down cleanly (flush, release the lease) on SIGINT or SIGTERM", ks))
		dropIn = append(dropIn, "KillSignal=SIGINT")
	}
	ts := f.Last("Service", "TimeoutStopSec")
	r.add("TimeoutStopSec", orDefault(ts, "90s (default)"))
	if ts != "" {
		if d, err := parseSystemdDuration(ts); err != nil || (d > 0 && d < 10*time.Second) {
			r.warn(fmt.Sprintf("TimeoutStopSec=%s is too short for a clean shutdown (want at least 10s, reference 30s)", ts))
			dropIn = append(dropIn, "TimeoutStopSec=30")
		}
	}
	state := f.List("Service", "StateDirectory")
	r.add("StateDirectory", orDash(strings.Join(state, " ")))
	if len(state) == 0 && st.sessions == "" {
		r.warn("neither StateDirectory= nor SESSIONS_PATH is set: the sessions dir depends on the working directory")
		dropIn = append(dropIn, "StateDirectory=wactl", "StateDirectoryMode=0700")
		st.sessions, st.sessionsFrom = "/var/lib/wactl/sessions", "StateDirectory=wactl (proposed)"
	}
	r.add("sessions_path", orDash(st.sessions))

	// Where the service may write.
	rw := []string{}
	for _, s := range state {
		rw = append(rw, filepath.Join("/var/lib", s))
	}
	for _, p := range f.List("Service", "ReadWritePaths") {
		rw = append(rw, strings.TrimLeft(p, "-+"))
	}
	privateTmp := isYes(f.Last("Service", "PrivateTmp"))
	protect := f.Last("Service", "ProtectSystem")
	if st.sessions != "" {
		switch {
		case !filepath.IsAbs(st.sessions):
			r.fail(fmt.Sprintf("sessions path %s (%s) is relative", st.sessions, st.sessionsFrom))
		case underAny(st.sessions, []string{"/tmp", "/var/tmp", "/dev/shm", "/run"}):
			why := "a temporary directory, emptied on reboot"
			if privateTmp && underAny(st.sessions, []string{"/tmp", "/var/tmp"}) {
				why = "under PrivateTmp=yes's private /tmp, discarded at every restart"
			}
			r.fail(fmt.Sprintf("sessions path %s is %s: every restart needs a new QR", st.sessions, why))
			dropIn = append(dropIn, "StateDirectory=wactl", "StateDirectoryMode=0700", "Environment=SESSIONS_PATH=/var/lib/wactl/sessions")
		case (protect == "strict" || protect == "full" || protect == "yes") && !underAny(st.sessions, rw) && protectedBy(protect, st.sessions):
			r.fail(fmt.Sprintf("sessions path %s is read-only under ProtectSystem=%s (not in StateDirectory=/ReadWritePaths=)", st.sessions, protect))
			dropIn = append(dropIn, "ReadWritePaths="+st.sessions)
		}
	}

	var missing []string
	for _, k := range sortedKeys(referenceHardening) {
		if got := f.Last("Service", k); !strings.EqualFold(got, referenceHardening[k]) {
			missing = append(missing, fmt.Sprintf("%s=%s (have %s)", k, referenceHardening[k], orDash(got)))
		}
	}
	r.add("hardening", fmt.Sprintf("%d/%d reference settings", len(referenceHardening)-len(missing), len(referenceHardening)))
	if len(missing) > 0 {
		r.warn(fmt.Sprintf("%d hardening settings differ from configs/wactl.service", len(missing)))
		for _, m := range missing {
			r.note("hardening: %s", m)
		}
	}
	if len(dropIn) > 0 {
		r.fix(env.dropInFix(dropIn))
	}
	if r.Status == "" {
		r.set(OK, "unit file matches the reference settings")
	}
	return r
}

// dropInFix writes a systemd override with lines in [Service], then
// reloads systemd; restarting is left to the operator.
func (env *Env) dropInFix(lines []string) Fix {
	path := env.dropInPath()
	content := "# written by wactl doctor --fix\n[Service]\n" + strings.Join(dedupe(lines), "\n") + "\n"
	return Fix{
		Summary: "systemd override " + path,
		Commands: []string{
			"sudo install -d " + shq(filepath.Dir(path)),
			"sudo tee " + shq(path) + " >/dev/null <<'OVR'\n" + content + "OVR",
			"sudo systemctl daemon-reload && sudo systemctl restart " + env.Unit,
		},
		Auto: true,
		apply: func(ctx context.Context) error {
			if old, err := os.ReadFile(path); err == nil && string(old) != content {
				return fmt.Errorf("%s exists with other content; not overwriting it (merge by hand)", path)
			}
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
				return err
			}
			if sd := env.systemd(ctx); sd.Err == nil {
				if _, err := env.Run(ctx, "systemctl", "daemon-reload"); err != nil {
					return fmt.Errorf("systemctl daemon-reload: %w", err)
				}
			}
			return nil
		},
	}
}

func protectedBy(mode, path string) bool {
	if mode == "strict" {
		return !underAny(path, []string{"/dev", "/proc", "/sys"})
	}
	return underAny(path, []string{"/usr", "/boot", "/efi", "/etc"})
}

// parseSystemdDuration reads "30", "30s", "1min 30s", "infinity".
func parseSystemdDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "infinity" {
		return 0, nil
	}
	if n, err := strconv.Atoi(s); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	r := strings.NewReplacer("min", "m", "sec", "s", "msec", "ms", " ", "")
	return time.ParseDuration(r.Replace(s))
}
