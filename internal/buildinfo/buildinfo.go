// Package buildinfo holds what the build injected with -ldflags -X:
//
//	-X github.com/wactl/wactl/internal/buildinfo.Version=v1.2.3
//	-X github.com/wactl/wactl/internal/buildinfo.Commit=abc123
//	-X github.com/wactl/wactl/internal/buildinfo.Date=2026-11-27T10:00:00Z
//
// Without them (go run, go test) it falls back to the module build info.
package buildinfo

import "runtime/debug"

var (
	Version = "dev"
	Commit  = ""
	Date    = ""
)

// Info is the version report of `wactl version`, /health and the worker
// field of account documents.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	Date      string `json:"date"`
	GoVersion string `json:"goVersion"`
}

// Get returns the build's version information.
func Get() Info {
	i := Info{Version: Version, Commit: Commit, Date: Date}
	if bi, ok := debug.ReadBuildInfo(); ok {
		i.GoVersion = bi.GoVersion
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if i.Commit == "" {
					i.Commit = s.Value
				}
			case "vcs.time":
				if i.Date == "" {
					i.Date = s.Value
				}
			}
		}
	}
	if i.Commit == "" {
		i.Commit = "unknown"
	}
	return i
}
