package config

import (
	"os"
	"path/filepath"
	"strings"
)

// The running service publishes itself in its runtime directory (the unit's
// RuntimeDirectory=wactl, /run/wactl): the admin socket, reachable by the
// service user and the members of its group, and a file naming its data
// dir. Commands run from any directory, without the config file, find the
// service's data and daemon through them (issue 17).
const (
	DefaultRuntimeDir = "/run/wactl"
	// RuntimeDataDirFile holds the running service's absolute data dir.
	RuntimeDataDirFile = "data_dir"
)

// RuntimeDir is the service's runtime directory: systemd's
// $RUNTIME_DIRECTORY (its first entry) when set, else /run/wactl.
func RuntimeDir(lookupEnv func(string) (string, bool)) string {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	if v, ok := lookupEnv("RUNTIME_DIRECTORY"); ok && v != "" {
		first, _, _ := strings.Cut(v, ":")
		return first
	}
	return DefaultRuntimeDir
}

// RunningServiceDataDir is the data dir a running service published in
// runtimeDir, and the file it read it from; "" when none is published.
func RunningServiceDataDir(runtimeDir string, readFile func(string) ([]byte, error)) (dir, from string) {
	if readFile == nil {
		readFile = os.ReadFile
	}
	from = filepath.Join(runtimeDir, RuntimeDataDirFile)
	b, err := readFile(from)
	if err != nil {
		return "", ""
	}
	dir = strings.TrimSpace(string(b))
	if !filepath.IsAbs(dir) || strings.ContainsAny(dir, "\n\x00") {
		return "", ""
	}
	return filepath.Clean(dir), from
}
