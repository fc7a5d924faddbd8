package doctor

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/wactl/wactl/pkg/config"
	"github.com/wactl/wactl/pkg/lock"
)

// legacyLease adds what the lease document says about the old Node
// service: its lease under this host's or this instance's id (wactl waits
// for it; wactl's own holder is "wactl:<id>", issue 15.1), and a lease it left behind when
// it stopped (it does not delete it, issue 18.5). handled: the lease check
// needs no other verdict on the holder.
func legacyLease(r *Result, env *Env, cfg *config.Config, v lock.LeaseView) (handled bool) {
	if !v.Exists || v.Format != "legacy" || v.Expired {
		return false
	}
	r.add("lease_format", "old service (no valid wactl binding)")
	r.add("lease_unwritten_for", v.SinceWrite.Round(time.Second))
	release := fmt.Sprintf("wactl lease release --holder %s", shellQuote(v.Holder))
	ours := v.Holder == cfg.InstanceID || v.Holder == env.Hostname
	switch {
	case ours && v.Holder == cfg.InstanceID:
		r.warn(fmt.Sprintf("the lease is held under this instance's id (%s) by a process that is not this wactl — the old service (wactl writes its holder as %s): wactl stays PASSIVE until it stops and its lease ends; with one id the app tells the two apart only by that prefix", v.Holder, lock.HolderID(cfg.InstanceID)))
		r.fix(Fix{Summary: "give wactl its own instance id (the shipped unit uses wactl-%H)",
			Commands: []string{"sudo systemctl edit wactl   # [Service] Environment=INSTANCE_ID=wactl-%H"}})
		handled = true
	case ours:
		r.warn(fmt.Sprintf("the lease is held under this host's name (%s, the old service's INSTANCE_ID=%%H) by a process that is not this wactl: the old service on this host; wactl stays PASSIVE until it is stopped and its lease ends", v.Holder))
		handled = true
	}
	if v.StaleLegacy(legacyRenew) {
		r.warn(fmt.Sprintf("the old service's lease (holder %s) has not been renewed for %s on Firestore's clock: the old service is stopped, but its lease blocks every takeover until %s",
			v.Holder, v.SinceWrite.Round(time.Second), v.LeaseUntil.UTC().Format(time.RFC3339)))
		r.fix(Fix{Summary: "end the stopped old service's lease now (refuses if it is renewed again)", Commands: []string{release}})
		return true
	}
	return handled
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r == '-' || r == '_' || r == '.' || r == ':' || r == '@' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// legacyRenew is the old service's renew interval (tests shorten it: the
// idle time is measured on Firestore's clock, which they cannot move).
var legacyRenew = lock.LegacyRenewInterval

// legacyUnit is the old service's systemd unit.
const legacyUnit = "whatsapp-backend"

// procRoot is /proc; tests point it at a fake tree.
var procRoot = "/proc"

// checkLegacyService warns when the old Node service is installed or running
// on this host (with the same instance id the two are named alike, though
// wactl's "wactl:" holder keeps the old service off its lease), and fails
// when it listens on wactl's port.
func checkLegacyService(ctx context.Context, env *Env) Result {
	var r Result
	port := 8080
	if env.Config != nil && env.Config.HTTP.Port != 0 {
		port = env.Config.HTTP.Port
	}
	found := false
	if _, err := env.LookPath("systemctl"); err == nil {
		out, err := env.Run(ctx, "systemctl", "show", legacyUnit, "--no-pager", "-p", "LoadState,ActiveState,MainPID,Environment,FragmentPath")
		if err == nil {
			p := ParseShow(string(out))
			if p["LoadState"] == "loaded" {
				found = true
				r.add(legacyUnit+".service", p["ActiveState"]+" "+p["FragmentPath"])
				id := envValue(p["Environment"], "INSTANCE_ID")
				if id != "" {
					id = expandSpecifiers(id, env.Hostname)
					r.add("old INSTANCE_ID", id)
				}
				if env.Config != nil && id != "" && id == env.Config.InstanceID {
					// No longer a split brain: wactl's lease names
					// lock.HolderID(id), which the old service never takes
					// for its own. Only the names stay confusing.
					r.warn(fmt.Sprintf("the old service (%s.service) runs with this wactl's instance id %q: the lease shows the old service as %s and wactl as %s (the old service never takes that for its own), but logs and /health instanceId name both %s",
						legacyUnit, id, id, lock.HolderID(id), id))
					r.fix(Fix{Summary: "give wactl its own instance id", Commands: []string{"sudo systemctl edit wactl   # [Service] Environment=INSTANCE_ID=wactl-%H"}})
				}
				if p["ActiveState"] == "active" || p["ActiveState"] == "activating" {
					r.warn(fmt.Sprintf("the old service %s.service is running on this host", legacyUnit))
				} else {
					r.warn(fmt.Sprintf("the old service %s.service is installed on this host (%s)", legacyUnit, p["ActiveState"]))
				}
				r.fix(Fix{Summary: "after the cutover, stop and disable the old service",
					Commands: []string{"sudo systemctl disable --now " + legacyUnit}})
			}
		}
	}
	for _, pr := range nodeServers() {
		found = true
		desc := fmt.Sprintf("pid %d: %s", pr.pid, pr.cmdline)
		if pr.listens(port) {
			desc += fmt.Sprintf(" (listening on :%d)", port)
			r.fail(fmt.Sprintf("an old service (node server.js, pid %d) listens on port %d, wactl's port", pr.pid, port))
		} else {
			r.warn(fmt.Sprintf("an old service (node server.js, pid %d) runs on this host", pr.pid))
		}
		r.add("node", desc)
	}
	if !found {
		r.set(OK, "no old Node service (whatsapp-backend, node server.js) on this host")
	}
	return r
}

// envValue reads NAME from systemctl's Environment= property.
func envValue(envProp, name string) string {
	for _, kv := range strings.Fields(envProp) {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

type nodeProc struct {
	pid     int
	cmdline string
}

// nodeServers lists processes whose command line is node … server.js.
func nodeServers() []nodeProc {
	ents, err := os.ReadDir(procRoot)
	if err != nil {
		return nil
	}
	var out []nodeProc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(procRoot, e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if filepath.Base(args[0]) != "node" && filepath.Base(args[0]) != "nodejs" {
			continue
		}
		for _, a := range args[1:] {
			if filepath.Base(a) == "server.js" {
				out = append(out, nodeProc{pid: pid, cmdline: strings.Join(args, " ")})
				break
			}
		}
	}
	return out
}

// listens reports whether the process holds a TCP socket listening on port
// (its /proc/<pid>/fd socket inodes against /proc/net/tcp and tcp6).
func (p nodeProc) listens(port int) bool {
	inodes := map[string]bool{}
	fds, _ := os.ReadDir(filepath.Join(procRoot, strconv.Itoa(p.pid), "fd"))
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join(procRoot, strconv.Itoa(p.pid), "fd", fd.Name()))
		if ino, ok := strings.CutPrefix(link, "socket:["); ok && err == nil {
			inodes[strings.TrimSuffix(ino, "]")] = true
		}
	}
	if len(inodes) == 0 {
		return false
	}
	for _, f := range []string{"tcp", "tcp6"} {
		fh, err := os.Open(filepath.Join(procRoot, "net", f))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			fl := strings.Fields(sc.Text())
			if len(fl) < 10 || fl[3] != "0A" { // 0A: LISTEN
				continue
			}
			_, hexPort, ok := strings.Cut(fl[1], ":")
			if pn, err := strconv.ParseInt(hexPort, 16, 32); ok && err == nil && int(pn) == port && inodes[fl[9]] {
				fh.Close()
				return true
			}
		}
		fh.Close()
	}
	return false
}
