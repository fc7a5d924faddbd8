package doctor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// showProps are the unit properties doctor reads.
var showProps = []string{"LoadState", "ActiveState", "SubState", "MainPID", "MemoryCurrent", "NRestarts",
	"User", "Group", "Environment", "KillSignal", "TimeoutStopUSec", "StateDirectory", "ReadWritePaths",
	"PrivateTmp", "ProtectSystem", "FragmentPath", "DropInPaths", "UnitFileState"}

// systemdState is `systemctl show` of the unit, or why it is unavailable.
type systemdState struct {
	Props map[string]string
	Err   error // systemctl missing or not booted with systemd
}

func (s *systemdState) Loaded() bool { return s.Err == nil && s.Props["LoadState"] == "loaded" }

func (e *Env) systemd(ctx context.Context) *systemdState {
	e.sdOnce.Do(func() {
		s := &systemdState{}
		if _, err := e.LookPath("systemctl"); err != nil {
			s.Err = fmt.Errorf("systemctl not found: not a systemd host")
		} else {
			out, err := e.Run(ctx, "systemctl", "show", e.Unit, "--no-pager", "-p", strings.Join(showProps, ","))
			if err != nil {
				s.Err = fmt.Errorf("systemctl show %s: %v", e.Unit, err)
			} else {
				s.Props = ParseShow(string(out))
			}
		}
		e.sd = s
	})
	return e.sd
}

// unitState is the unit file with its drop-ins merged.
type unitState struct {
	path    string
	dropIns []string
	file    *UnitFile
	err     error
}

func (e *Env) unitFile(ctx context.Context) *unitState {
	e.unitOnce.Do(func() {
		u := &unitState{path: e.UnitFile}
		sd := e.systemd(ctx)
		if u.path == "" && sd.Loaded() {
			u.path = sd.Props["FragmentPath"]
		}
		if u.path == "" {
			u.path = filepath.Join(e.SystemdDir, e.Unit+".service")
		}
		b, err := os.ReadFile(u.path)
		if err != nil {
			u.err = err
			e.unit = u
			return
		}
		u.file = ParseUnit(string(b))
		seen := map[string]bool{}
		var drops []string
		if sd.Loaded() {
			drops = append(drops, SplitQuoted(sd.Props["DropInPaths"])...)
		}
		for _, dir := range []string{filepath.Join(e.SystemdDir, e.Unit+".service.d"), u.path + ".d"} {
			m, _ := filepath.Glob(filepath.Join(dir, "*.conf"))
			drops = append(drops, m...)
		}
		// systemd applies drop-ins in file-name order across directories.
		sort.SliceStable(drops, func(i, j int) bool { return filepath.Base(drops[i]) < filepath.Base(drops[j]) })
		for _, d := range drops {
			if seen[d] {
				continue
			}
			seen[d] = true
			if b, err := os.ReadFile(d); err == nil {
				u.file.Merge(ParseUnit(string(b)))
				u.dropIns = append(u.dropIns, d)
			}
		}
		e.unit = u
	})
	return e.unit
}

// dropInPath is where doctor writes its override.
func (e *Env) dropInPath() string {
	return filepath.Join(e.SystemdDir, e.Unit+".service.d", "50-wactl-doctor.conf")
}
