package doctor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"sync"
	"syscall"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/wactl/wactl/pkg/config"
	"github.com/wactl/wactl/pkg/daemon"
)

// Runner runs a command and returns its standard output. Tests inject
// canned output for systemctl; the default runs the real command.
type Runner func(ctx context.Context, name string, args ...string) ([]byte, error)

// Env is everything the checks read. Zero fields take the real host's
// values (fill); tests inject temp dirs, canned command output and clocks.
type Env struct {
	// Config is the loaded configuration (possibly partial when ConfigErr
	// is set); nil when it could not be loaded at all.
	Config     *config.Config
	ConfigFile string
	Origins    map[string]config.Origin
	ConfigErr  error

	Hostname string
	Now      func() time.Time
	Logger   *slog.Logger
	// Offline: no daemon, no network (Firestore) checks.
	Offline bool
	// Deep runs the checks that read whole files (PRAGMA quick_check of the
	// embedded store); the default reads a bounded number of pages.
	Deep bool

	// Unit is the systemd unit name (default "wactl"); UnitFile its file
	// (default: systemd's FragmentPath, else SystemdDir/<unit>.service);
	// SystemdDir where drop-ins are written (default /etc/systemd/system).
	Unit       string
	UnitFile   string
	SystemdDir string
	Run        Runner
	LookPath   func(string) (string, error)

	// MountInfo is the path of mountinfo (default /proc/self/mountinfo).
	MountInfo string
	// Statfs reports free and total bytes of the file system holding path.
	Statfs  func(path string) (free, total uint64, err error)
	Geteuid func() int
	// ProbeAs checks that uid:gid can create files in dir (doctor run as
	// root probing for the service user).
	ProbeAs func(ctx context.Context, uid, gid int, dir string) error

	// DaemonAccounts reads the running daemon's accounts through its admin
	// socket (default: daemon.DialAdmin on the data dir, which also finds
	// the service's runtime socket): the inventory of a user who may not
	// read the session files but may reach the daemon (the wactl group).
	DaemonAccounts func(ctx context.Context, dataDir string) (socket string, accounts []daemon.AccountStatus, err error)

	// HTTP reaches the daemon; BaseURL default http://<http.host>:<port>.
	HTTP    *http.Client
	BaseURL string
	// BurstN requests in the health burst (default 30).
	BurstN int

	// Firestore opens the client for the lease and store checks; it is
	// called at most once and shared. Nil: those checks are skipped.
	Firestore func(ctx context.Context) (*firestore.Client, error)
	// SkewWarn/SkewFail: clock skew thresholds (default 1 s and the lease
	// safety margin, else 5 s).
	SkewWarn, SkewFail time.Duration
	// ClockOffset is added to Now when measuring skew; tests inject skew.
	ClockOffset time.Duration

	fillOnce sync.Once
	fsOnce   sync.Once
	fsClient *firestore.Client
	fsErr    error
	sdOnce   sync.Once
	sd       *systemdState
	unitOnce sync.Once
	unit     *unitState
	userOnce sync.Once
	svcUser  serviceUser
}

func (e *Env) fill() {
	e.fillOnce.Do(func() {
		if e.Now == nil {
			e.Now = time.Now
		}
		if e.Logger == nil {
			e.Logger = slog.New(slog.DiscardHandler)
		}
		if e.Hostname == "" {
			e.Hostname, _ = os.Hostname()
		}
		if e.Unit == "" {
			e.Unit = "wactl"
		}
		if e.SystemdDir == "" {
			e.SystemdDir = "/etc/systemd/system"
		}
		if e.Run == nil {
			e.Run = execRunner
		}
		if e.LookPath == nil {
			e.LookPath = exec.LookPath
		}
		if e.MountInfo == "" {
			e.MountInfo = "/proc/self/mountinfo"
		}
		if e.Statfs == nil {
			e.Statfs = statfs
		}
		if e.Geteuid == nil {
			e.Geteuid = os.Geteuid
		}
		if e.ProbeAs == nil {
			e.ProbeAs = probeAs
		}
		if e.DaemonAccounts == nil {
			e.DaemonAccounts = daemonAccounts
		}
		if e.HTTP == nil {
			e.HTTP = &http.Client{Transport: &http.Transport{DisableKeepAlives: false, MaxIdleConnsPerHost: 16}}
		}
		if e.BaseURL == "" && e.Config != nil {
			host := e.Config.HTTP.Host
			if host == "" || host == "0.0.0.0" || host == "::" {
				host = "127.0.0.1"
			}
			e.BaseURL = "http://" + net.JoinHostPort(host, strconv.Itoa(e.Config.HTTP.Port))
		}
		if e.BurstN <= 0 {
			e.BurstN = 30
		}
		if e.SkewWarn <= 0 {
			e.SkewWarn = time.Second
		}
		if e.SkewFail <= 0 {
			e.SkewFail = 5 * time.Second
			if e.Config != nil && e.Config.Lock.SafetyMargin > 0 {
				e.SkewFail = e.Config.Lock.SafetyMargin
			}
		}
	})
}

func (e *Env) instanceID() string {
	if e.Config == nil {
		return ""
	}
	return e.Config.InstanceID
}

// firestoreClient opens (once) the shared client.
func (e *Env) firestoreClient(ctx context.Context) (*firestore.Client, error) {
	if e.Firestore == nil {
		return nil, errors.New("no Firestore connection configured")
	}
	e.fsOnce.Do(func() {
		// The client outlives the check that opened it first.
		e.fsClient, e.fsErr = e.Firestore(context.WithoutCancel(ctx))
	})
	return e.fsClient, e.fsErr
}

// Close releases what the checks opened.
func (e *Env) Close() {
	if e.fsClient != nil {
		e.fsClient.Close()
	}
}

func execRunner(ctx context.Context, name string, args ...string) ([]byte, error) {
	c := exec.CommandContext(ctx, name, args...)
	c.Env = append(os.Environ(), "SYSTEMD_PAGER=", "LC_ALL=C")
	out, err := c.Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(ee.Stderr) > 0 {
		err = fmt.Errorf("%s: %w: %s", name, err, firstLine(string(ee.Stderr)))
	}
	return out, err
}

func statfs(path string) (free, total uint64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, 0, err
	}
	return st.Bavail * uint64(st.Bsize), st.Blocks * uint64(st.Bsize), nil
}

// probeAs runs `test -w -a -x dir` as uid:gid: access(2) with the child's
// real ids answers exactly "could the service create files there", read-only
// mounts included, without creating anything.
func probeAs(ctx context.Context, uid, gid int, dir string) error {
	path, err := exec.LookPath("test")
	if err != nil {
		return fmt.Errorf("cannot probe as uid %d: %w", uid, err)
	}
	c := exec.CommandContext(ctx, path, "-w", dir, "-a", "-x", dir)
	c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}}
	if err := c.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fmt.Errorf("uid %d cannot write to %s", uid, dir)
		}
		return fmt.Errorf("probe as uid %d: %w", uid, err)
	}
	return nil
}

// serviceUser is who the daemon runs as.
type serviceUser struct {
	Name, Group string
	UID, GID    int
	Source      string // systemd | unit file | current user
}

func (e *Env) serviceUser(ctx context.Context) serviceUser {
	e.userOnce.Do(func() {
		name, src := "", ""
		if sd := e.systemd(ctx); sd.Loaded() && sd.Props["User"] != "" {
			name, src = sd.Props["User"], "systemd User="
		} else if u := e.unitFile(ctx); u.err == nil && u.file.Last("Service", "User") != "" {
			name, src = u.file.Last("Service", "User"), "unit file User="
		}
		su := serviceUser{UID: e.Geteuid(), GID: os.Getegid(), Source: "current user"}
		if name == "" && e.Config != nil {
			// No unit says: whoever owns the data dir runs the service
			// (the package's layout, a unit not installed here). Taking
			// the current user instead would suggest, as root, to chown
			// the service's sessions to root and stop the service.
			if uid, ok := ownerUID(e.Config.DataDir); ok && uid != su.UID {
				if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
					name, src = u.Username, "owner of "+e.Config.DataDir
				}
			}
		}
		if name != "" {
			su.Name, su.Source = name, src
			su.UID, su.GID = -1, -1
			if u, err := user.Lookup(name); err == nil {
				su.UID, _ = strconv.Atoi(u.Uid)
				su.GID, _ = strconv.Atoi(u.Gid)
			}
		} else {
			su.Name = userName(su.UID)
		}
		su.Group = su.Name
		if su.GID >= 0 {
			su.Group = groupName(su.GID)
		}
		e.svcUser = su
	})
	return e.svcUser
}

func userName(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil && u.Username != "" {
		return u.Username
	}
	return strconv.Itoa(uid)
}

func groupName(gid int) string {
	if g, err := user.LookupGroupId(strconv.Itoa(gid)); err == nil && g.Name != "" {
		return g.Name
	}
	return strconv.Itoa(gid)
}

// Fresh returns a copy of e's settings without what the last run cached
// (systemd state, unit file, Firestore client): for the run after --fix.
func (e *Env) Fresh() *Env {
	return &Env{Config: e.Config, ConfigFile: e.ConfigFile, Origins: e.Origins, ConfigErr: e.ConfigErr,
		Hostname: e.Hostname, Now: e.Now, Logger: e.Logger, Offline: e.Offline, Deep: e.Deep, DaemonAccounts: e.DaemonAccounts,
		Unit: e.Unit, UnitFile: e.UnitFile, SystemdDir: e.SystemdDir, Run: e.Run, LookPath: e.LookPath,
		MountInfo: e.MountInfo, Statfs: e.Statfs, Geteuid: e.Geteuid, ProbeAs: e.ProbeAs,
		HTTP: e.HTTP, BaseURL: e.BaseURL, BurstN: e.BurstN, Firestore: e.Firestore,
		SkewWarn: e.SkewWarn, SkewFail: e.SkewFail, ClockOffset: e.ClockOffset}
}
