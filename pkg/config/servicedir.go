package config

import (
	"os"
	"path/filepath"
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
