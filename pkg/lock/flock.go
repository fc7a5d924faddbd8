package lock

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Names of the files in the data dir. Both backends take the same flock, so
// one data dir is never used by two processes whichever backend they run.
const (
	LockFileName   = "wactl.lock"
	HolderFileName = "wactl.lock.json"
)

// ErrHeld is returned (wrapped) when another open file description holds
// the data dir's lock — another process, or another Lock in this process.
var ErrHeld = errors.New("data dir lock held by another process")

// FileLock is an exclusive flock(2) on the data dir itself and on
// <dir>/wactl.lock. The kernel drops both when the process dies, however it
// dies: holding them proves that no earlier process that used this data dir
// is still running.
//
// The directory is what decides: a file can be unlinked by accident (rm,
// a cleanup script), and a second process would then lock a new file at
// the same path while the first still held the old one (issue 15.4); a
// directory with files in it cannot be unlinked, and the descriptor names
// the directory whatever happens to its entries. The file lock is kept so
// that an older wactl on the same data dir (which locks only the file)
// still excludes and is excluded.
type FileLock struct {
	dir string
	d   *os.File // the data directory
	f   *os.File // <dir>/wactl.lock
}

// TryLockDir takes the data dir's lock without waiting.
func TryLockDir(dir string) (*FileLock, error) {
	if err := ensureDir(dir); err != nil {
		return nil, err
	}
	d, err := os.OpenFile(dir, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("data dir %s: %w", dir, err)
	}
	if err := flockNB(d, dir); err != nil {
		d.Close()
		return nil, err
	}
	path := filepath.Join(dir, LockFileName)
	for range 3 {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_CLOEXEC, 0o600)
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("lock file %s: %w (the data dir must be writable by wactl's user)", path, err)
		}
		if err := flockNB(f, path); err != nil {
			f.Close()
			d.Close()
			return nil, err
		}
		l := &FileLock{dir: dir, d: d, f: f}
		// Verify after locking: the path may have been replaced between
		// open and flock; then lock the file that is there now.
		if ok, err := l.StillOwned(); err == nil && ok {
			return l, nil
		}
		f.Close()
	}
	d.Close()
	return nil, fmt.Errorf("lock file %s keeps being replaced: is something deleting files in the data dir?", path)
}

func flockNB(f *os.File, name string) error {
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("%s: %w", name, ErrHeld)
		}
		return fmt.Errorf("flock %s: %w", name, err)
	}
	return nil
}

func ensureDir(dir string) error {
	if dir == "" {
		return errors.New("lock: no data dir given: set the data dir (STATE_DIRECTORY or data_dir)")
	}
	if !filepath.IsAbs(dir) {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return fmt.Errorf("lock: data dir %q: %w", dir, err)
		}
		dir = abs
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("lock: create data dir %s: %w", dir, err)
	}
	return nil
}

// Unlock releases the lock. The files stay: removing the lock file would let
// an older wactl that opened the old inode and one that creates a new one
// both hold "the" lock.
func (l *FileLock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the last descriptor drops the flock
	if derr := l.d.Close(); err == nil {
		err = derr
	}
	l.f, l.d = nil, nil
	return err
}

// StillOwned reports whether the paths still name the directory and file we
// locked. A deleted or replaced lock file no longer excludes an older wactl
// (the directory lock still excludes every current one); a replaced data
// dir (renamed, or removed with everything in it) excludes nobody.
func (l *FileLock) StillOwned() (bool, error) {
	if l == nil || l.f == nil {
		return false, nil
	}
	for _, c := range []struct {
		held *os.File
		path string
	}{{l.d, l.dir}, {l.f, filepath.Join(l.dir, LockFileName)}} {
		held, err := c.held.Stat()
		if err != nil {
			return false, err
		}
		now, err := os.Stat(c.path)
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if !os.SameFile(held, now) {
			return false, nil
		}
	}
	return true, nil
}

// holderFile is what <dir>/wactl.lock.json says about the process holding
// the lock: only informative (the flock decides), so a torn or missing file
// never changes who holds the lock.
type holderFile struct {
	Backend    string    `json:"backend"`
	InstanceID string    `json:"instanceId"`
	Host       string    `json:"host"`
	PID        int       `json:"pid"`
	StartedAt  time.Time `json:"startedAt"`
	Epoch      int64     `json:"epoch"`
}

// writeHolder replaces the holder file atomically (temp + fsync + rename),
// mode 0600 from the start.
func (l *FileLock) writeHolder(h holderFile) error {
	b, err := json.MarshalIndent(h, "", "  ")
	if err != nil {
		return err
	}
	final := filepath.Join(l.dir, HolderFileName)
	tmp, err := os.CreateTemp(l.dir, HolderFileName+".tmp*")
	if err != nil {
		return fmt.Errorf("lock holder file: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("lock holder file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), final)
}

func readHolder(dir string) (holderFile, error) {
	var h holderFile
	b, err := os.ReadFile(filepath.Join(dir, HolderFileName))
	if err != nil {
		return h, err
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return h, fmt.Errorf("holder file %s: %w", filepath.Join(dir, HolderFileName), err)
	}
	return h, nil
}

// probeDir reports whether some process holds the data dir's lock, without
// creating anything. It takes shared locks for an instant on the directory
// and on the lock file (an older wactl locks only the file): a holder's
// exclusive lock makes that fail.
func probeDir(dir string) (held bool, err error) {
	for _, p := range []string{dir, filepath.Join(dir, LockFileName)} {
		f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_CLOEXEC, 0)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return false, err
		}
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
		f.Close()
		if err != nil {
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return true, nil
			}
			return false, err
		}
	}
	return false, nil
}
