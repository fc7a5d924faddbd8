package config

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// DefaultServiceDataDir is where the unit's StateDirectory=wactl keeps the
// service's data.
const DefaultServiceDataDir = "/var/lib/wactl"

// ServiceUnitPaths are where an installed wactl.service is found.
var ServiceUnitPaths = []string{"/etc/systemd/system/wactl.service", "/lib/systemd/system/wactl.service", "/usr/lib/systemd/system/wactl.service"}

// ServiceDataDir says where the wactl service on this host keeps its data,
// and how that is known, for the message of a command that found nothing
// where it looked: the running service's published data dir, else the
// installed config file's data_dir, else the unit's state directory when
// a unit is installed. "" when nothing says there is a service here.
func ServiceDataDir(lookupEnv func(string) (string, bool)) (dir, from string) {
	if dir, from := RunningServiceDataDir(RuntimeDir(lookupEnv), nil); dir != "" {
		return dir, "the running service, " + from
	}
	if file := DefaultSearchPaths[0]; fileExists(file) {
		l, _ := Load(LoadOptions{ConfigFile: file, LookupEnv: func(string) (string, bool) { return "", false }})
		if l != nil && l.Origins["data_dir"].Source == SourceFile {
			return l.Config.DataDir, file
		}
	}
	for _, unit := range ServiceUnitPaths {
		if fileExists(unit) {
			return DefaultServiceDataDir, unit + " (StateDirectory=wactl)"
		}
	}
	return "", ""
}

func fileExists(p string) bool {
	_, err := os.Stat(filepath.Clean(p))
	return err == nil
}

// ServiceHint is the sentence a command that found nothing in dataDir adds:
// where the wactl service's data is and the command that reads it, e.g.
// "the wactl service's data is in /var/lib/wactl (from /etc/wactl/config.yaml):
// run as `sudo -u wactl wactl audit duplicates --data-dir /var/lib/wactl`".
// "" when no service is known on this host or it uses dataDir itself.
func ServiceHint(dataDir, command string) string {
	dir, from := ServiceDataDir(nil)
	if dir == "" || filepath.Clean(dir) == filepath.Clean(dataDir) {
		return ""
	}
	return fmt.Sprintf("the wactl service's data is in %s (from %s): run as `sudo -u %s wactl %s --data-dir %s`", dir, from, OwnerName(dir), command, dir)
}

// OwnerName is the login name of path's owner (of its nearest existing
// parent when it is missing or unreadable), as sudo -u takes it: "#uid"
// for a uid without a name, "wactl" when nothing can be read.
func OwnerName(path string) string {
	for p := filepath.Clean(path); ; p = filepath.Dir(p) {
		if st, err := os.Stat(p); err == nil {
			sys, ok := st.Sys().(*syscall.Stat_t)
			if !ok {
				break
			}
			if u, err := user.LookupId(strconv.Itoa(int(sys.Uid))); err == nil && u.Username != "" {
				return u.Username
			}
			return "'#" + strconv.Itoa(int(sys.Uid)) + "'"
		}
		if p == filepath.Dir(p) {
			break
		}
	}
	return "wactl"
}
