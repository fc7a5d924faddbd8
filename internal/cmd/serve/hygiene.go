package serve

import (
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/wactl/wactl/pkg/config"
	"github.com/wactl/wactl/pkg/histq"
)

// maxPermLines caps the per-path log lines of tightenPermissions; past it
// one summary line says how many more.
const maxPermLines = 20

// tightenPermissions makes wactl's state private before anything opens it:
// directories 0700, files 0600, under the data dir, the sessions dir and
// beside the embedded store (a restore from a backup or an operator's cp
// leaves 0755/0644; sessions are the keys of the WhatsApp accounts). It
// logs every change, never follows symlinks, and a path it cannot change
// is a warning, not a failure: doctor names the fix.
func tightenPermissions(cfg *config.Config, log *slog.Logger) {
	seen := map[string]bool{}
	changed, failed := 0, 0
	fix := func(path string, mode fs.FileMode, want fs.FileMode) {
		if seen[path] || mode.Perm()&^want == 0 {
			return
		}
		seen[path] = true
		err := os.Chmod(path, mode.Perm()&want)
		switch {
		case err != nil:
			failed++
			log.Warn("cannot make a private path private; run wactl doctor", "path", path, "mode", mode.Perm().String(), "err", err)
		default:
			changed++
			if changed <= maxPermLines {
				log.Warn("tightened permissions", "path", path, "was", mode.Perm().String(), "now", want.String())
			}
		}
	}
	walk := func(root string) {
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return nil // unreadable parts are doctor's to report
			}
			if d.Type()&fs.ModeSymlink != 0 {
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return nil
			}
			switch {
			case d.IsDir():
				fix(p, info.Mode(), 0o700)
			case info.Mode().IsRegular():
				fix(p, info.Mode(), 0o600)
			}
			return nil
		})
	}
	// The data dir may be shared with other files (data_dir is any
	// directory): only the dir itself and wactl's own files in it.
	if fi, err := os.Lstat(cfg.DataDir); err == nil && fi.IsDir() {
		fix(cfg.DataDir, fi.Mode(), 0o700)
		if ents, err := os.ReadDir(cfg.DataDir); err == nil {
			for _, e := range ents {
				if e.Type().IsRegular() && (strings.HasPrefix(e.Name(), "wactl") || strings.HasPrefix(e.Name(), histq.FileName)) {
					if fi, err := e.Info(); err == nil {
						fix(filepath.Join(cfg.DataDir, e.Name()), fi.Mode(), 0o600)
					}
				}
			}
		}
	}
	walk(cfg.Sessions.Path)
	if cfg.Store.Backend == "embedded" {
		for _, p := range []string{cfg.Store.Path, cfg.Store.Path + "-wal", cfg.Store.Path + "-shm"} {
			if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() {
				fix(p, fi.Mode(), 0o600)
			}
		}
	}
	if changed > maxPermLines {
		log.Warn("tightened permissions", "paths", changed, "logged", maxPermLines)
	}
}
