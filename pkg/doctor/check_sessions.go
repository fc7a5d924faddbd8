package doctor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/wactl/wactl/pkg/sessions"
)

// Free space thresholds of the sessions file system.
const (
	minFreeFail = 100 << 20
	minFreeWarn = 1 << 30
)

func checkSessionsDir(ctx context.Context, env *Env) Result {
	var r Result
	if env.Config == nil {
		r.Status, r.Summary = Skip, "skipped: no configuration"
		return r
	}
	dir := env.Config.Sessions.Path
	su := env.serviceUser(ctx)
	r.add("SESSIONS_PATH", orDash(dir))
	r.add("service_user", fmt.Sprintf("%s (%s)", su.Name, su.Source))
	if dir == "" {
		r.fail("the sessions path is not set")
		return r
	}
	if !filepath.IsAbs(dir) {
		r.fail(fmt.Sprintf("sessions path %s is relative: it changes with the working directory", dir))
		return r
	}
	install := fmt.Sprintf("sudo install -d -o %s -g %s -m 700 %s", shq(su.Name), shq(su.Group), shq(dir))
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		r.add("exists", "NO")
		asked, why := env.sessionsDirAskedFor()
		if !asked {
			return notConfigured(env, r, dir)
		}
		r.fail(fmt.Sprintf("sessions dir %s does not exist", dir))
		r.fix(Fix{Summary: "create the sessions dir for " + su.Name + " (" + why + ")", Commands: []string{install}, Auto: su.UID >= 0,
			apply: func(context.Context) error { return createDir(dir, su.UID, su.GID) }})
		return r
	}
	if err != nil {
		r.add("exists", "unknown")
		r.Status, r.Summary = Skip, fmt.Sprintf("skipped: cannot see %s as %s: %v", dir, userName(env.Geteuid()), err)
		return r
	}
	r.add("exists", "YES")
	if !fi.IsDir() {
		r.fail(fmt.Sprintf("sessions path %s is not a directory", dir))
		return r
	}
	st := fi.Sys().(*syscall.Stat_t)
	perm := fi.Mode().Perm()
	r.add("owner", fmt.Sprintf("%s:%s", userName(int(st.Uid)), groupName(int(st.Gid))))
	r.add("mode", fmt.Sprintf("%04o", perm))
	if su.UID >= 0 && int(st.Uid) != su.UID {
		r.fail(fmt.Sprintf("sessions dir is owned by %s, not by the service user %s", userName(int(st.Uid)), su.Name))
		r.fix(Fix{Summary: "give the sessions dir to " + su.Name,
			Commands: []string{fmt.Sprintf("sudo chown -R %s:%s %s", shq(su.Name), shq(su.Group), shq(dir))}, Auto: true,
			apply: func(context.Context) error { return chownTree(dir, su.UID, su.GID) }})
	}
	if perm&0o077 != 0 {
		msg := fmt.Sprintf("sessions dir mode %04o lets other users read session keys", perm)
		if perm&0o022 != 0 {
			r.fail(fmt.Sprintf("sessions dir mode %04o lets other users replace session keys (wactl refuses to start)", perm))
		} else {
			r.warn(msg)
		}
		r.fix(Fix{Summary: "make the sessions dir private", Commands: []string{"sudo chmod 700 " + shq(dir)}, Auto: true,
			apply: func(context.Context) error { return os.Chmod(dir, 0o700) }})
	}
	writable, how := env.probeWritable(ctx, dir, su)
	r.add("sessions_writable", writable)
	if how != "" {
		r.note("%s", how)
	}
	if writable == "NO" {
		r.fail(fmt.Sprintf("the service user %s cannot write to %s", su.Name, dir))
		if len(r.Fixes) == 0 {
			r.fix(Fix{Summary: "recreate the permissions", Commands: []string{install}})
		}
	}
	if r.Status == "" {
		r.set(OK, fmt.Sprintf("%s exists, owned by %s, mode %04o, writable", dir, su.Name, perm))
	}
	return r
}

// probeWritable answers YES, NO or SKIPPED (with why).
func (env *Env) probeWritable(ctx context.Context, dir string, su serviceUser) (string, string) {
	euid := env.Geteuid()
	switch {
	case su.UID < 0:
		return "SKIPPED", fmt.Sprintf("service user %s does not exist on this host", su.Name)
	case su.UID == euid:
		f, err := os.CreateTemp(dir, ".wactl-doctor-probe-*")
		if err != nil {
			return "NO", err.Error()
		}
		f.Close()
		os.Remove(f.Name())
		return "YES", ""
	case euid == 0:
		if err := env.ProbeAs(ctx, su.UID, su.GID, dir); err != nil {
			return "NO", "probed as " + su.Name + ": " + err.Error()
		}
		return "YES", "probed as " + su.Name
	}
	return "SKIPPED", fmt.Sprintf("cannot probe as %s without root; run sudo wactl doctor", su.Name)
}

func createDir(dir string, uid, gid int) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		return err
	}
	return os.Chmod(dir, 0o700)
}

// chownTree gives dir and everything in it to uid:gid without following
// symlinks. Nothing is moved or removed.
func chownTree(dir string, uid, gid int) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

func checkSessionsStorage(ctx context.Context, env *Env) Result {
	var r Result
	if env.Config == nil {
		r.Status, r.Summary = Skip, "skipped: no configuration"
		return r
	}
	dir := existingParent(env.Config.Sessions.Path)
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	r.add("checked_path", dir)
	b, err := os.ReadFile(env.MountInfo)
	if err != nil {
		r.Status, r.Summary = Skip, "skipped: cannot read "+env.MountInfo+": "+err.Error()
		return r
	}
	m, ok := MountOf(ParseMountInfo(string(b)), dir)
	if !ok {
		r.Status, r.Summary = Skip, "skipped: no mount found for "+dir
		return r
	}
	r.add("mount", m.MountPoint)
	r.add("fstype", m.FSType)
	switch m.FSType {
	case "tmpfs", "ramfs":
		r.fail(fmt.Sprintf("sessions dir is on %s (%s): memory-backed, emptied on reboot; every account would need a new QR", m.FSType, m.MountPoint))
		r.fix(Fix{Summary: "move the sessions to persistent storage", Commands: []string{
			"sudo install -d -m 700 /var/lib/wactl/sessions",
			"sudo systemctl edit wactl   # [Service] StateDirectory=wactl and Environment=SESSIONS_PATH=/var/lib/wactl/sessions",
			"sudo systemctl restart wactl",
		}})
	case "overlay", "aufs":
		r.warn(fmt.Sprintf("sessions dir is on a container %s file system: lost when the container is recreated unless it is a volume", m.FSType))
		r.fix(Fix{Summary: "mount a volume for the sessions", Commands: []string{"docker run -v wactl-data:/var/lib/wactl IMAGE   # or a bind mount: -v /srv/wactl:/var/lib/wactl"}})
	}
	free, total, err := env.Statfs(dir)
	if err == nil {
		r.add("free", humanBytes(free))
		r.add("total", humanBytes(total))
		switch {
		case free < minFreeFail:
			r.fail(fmt.Sprintf("only %s free on %s", humanBytes(free), m.MountPoint))
		case free < minFreeWarn:
			r.warn(fmt.Sprintf("only %s free on %s", humanBytes(free), m.MountPoint))
		}
	}
	if r.Status == "" {
		r.set(OK, fmt.Sprintf("persistent %s file system, %s free", m.FSType, humanBytes(free)))
	}
	return r
}

func existingParent(p string) string {
	for p != "/" && p != "." && p != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
		p = filepath.Dir(p)
	}
	return "/"
}

func humanBytes(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1fGB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.0fMB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%dKB", n>>10)
}

func checkSessionsInventory(ctx context.Context, env *Env) Result {
	var r Result
	if env.Config == nil {
		r.Status, r.Summary = Skip, "skipped: no configuration"
		return r
	}
	dir := env.Config.Sessions.Path
	if _, err := os.Stat(dir); err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return inventoryFromDaemon(ctx, env, dir, err)
		}
		r.Status, r.Summary = Skip, "skipped: sessions dir not readable: "+err.Error()
		return r
	}
	// Read-only, whoever runs doctor: no write probe, no lock, no -shm of
	// another user's database (sessions.OpenExisting, inspect.go), so root
	// and operators count the service's accounts and leave nothing behind.
	// Problems of the dir itself (owner, mode) are the sessions.dir check's.
	st, err := sessions.OpenExisting(dir, sessions.Options{InstanceID: env.instanceID(), Logger: env.Logger})
	if err != nil {
		r.fail("cannot open the sessions dir: " + err.Error())
		return r
	}
	inv, err := st.Inventory(ctx)
	if errors.Is(err, fs.ErrPermission) {
		return inventoryFromDaemon(ctx, env, dir, err)
	}
	if err != nil {
		r.fail("inventory: " + err.Error())
		return r
	}
	if uid, ok := ownerUID(dir); ok && uid != env.Geteuid() {
		r.note("read as %s, read-only: nothing in %s was created or changed", userName(env.Geteuid()), dir)
	}
	c := inv.Counts
	r.add("account_dirs", c.AccountDirs)
	r.add("paired", c.Paired)
	r.add("unpaired", c.Unpaired)
	r.add("corrupt", c.Corrupt)
	r.add("unreadable", c.Unreadable)
	r.add("legacy_baileys", c.LegacyBaileys)
	r.add("missing_metadata", c.MissingMetadata)
	r.add("in_use", c.InUse)
	for _, p := range inv.Problems {
		switch p.Kind {
		case sessions.ProblemCorruptStore, sessions.ProblemUnreadable:
			r.note("%s: %s", p.Path, p.Detail)
			if p.Account != "" {
				r.fix(Fix{Summary: "set the damaged session aside (kept under removed/) and pair again",
					Commands: []string{"wactl accounts remove " + shq(p.Account), "wactl pair --account " + shq(p.Account)}})
			}
		case sessions.ProblemLoosePerms:
			path := p.Path
			mode := os.FileMode(0o600)
			if fi, err := os.Stat(path); err == nil && fi.IsDir() {
				mode = 0o700
			}
			r.note("%s: %s", p.Path, p.Detail)
			r.fix(Fix{Summary: "tighten " + path, Commands: []string{fmt.Sprintf("chmod %o %s", mode, shq(path))}, Auto: true,
				apply: func(context.Context) error { return os.Chmod(path, mode) }})
		case sessions.ProblemLegacyOrphaned, sessions.ProblemBadDirName, sessions.ProblemStrayFile:
			r.note("%s: %s", p.Path, p.Detail)
		case sessions.ProblemWALNotRead:
			r.warn(fmt.Sprintf("%s: the last writes were not read (its -wal has no -shm); the counts may be short", p.Account))
			r.note("%s: %s", p.Path, p.Detail)
		}
	}
	if c.Corrupt > 0 || c.Unreadable > 0 {
		r.fail(fmt.Sprintf("%d corrupt and %d unreadable session(s): those accounts cannot restore", c.Corrupt, c.Unreadable))
	}
	if c.LegacyBaileys > 0 {
		r.warn(fmt.Sprintf("%d legacy Baileys session(s) (creds.json): they cannot be carried over", c.LegacyBaileys))
		r.note("legacy Baileys sessions need one re-pair each with wactl pair; after that they restore without QR")
	}
	if c.Paired == 0 {
		r.warn("no paired session on disk: nothing restores after a restart until an account is paired")
		r.fix(Fix{Summary: "pair an account (its own number instead of the example)", Commands: []string{"wactl pair --phone +40712345678"}})
	}
	if r.Status == "" || r.Status == OK {
		r.set(OK, fmt.Sprintf("%d account dir(s), %d paired", c.AccountDirs, c.Paired))
	}
	return r
}
