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

// FileLock is an exclusive flock(2) on <dir>/wactl.lock. The kernel drops it
// when the process dies, however it dies: holding it proves that no earlier
// process that used this data dir is still running.
type FileLock struct {
	dir string
	f   *os.File
}

// TryLockDir takes the data dir's lock without waiting.
func TryLockDir(dir string) (*FileLock, error) {
	if err := ensureDir(dir); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, LockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock file %s: %w (the data dir must be writable by wactl's user)", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: %w", path, ErrHeld)
		}
		return nil, fmt.Errorf("flock %s: %w", path, err)
	}
	return &FileLock{dir: dir, f: f}, nil
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
// a process that opened the old inode and one that creates a new one both
// hold "the" lock.
func (l *FileLock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the last descriptor drops the flock
	l.f = nil
	return err
}

// StillOwned reports whether the path still names the file we locked: if
// someone deleted or replaced it, another process can lock the new file.
func (l *FileLock) StillOwned() (bool, error) {
	if l == nil || l.f == nil {
		return false, nil
	}
	held, err := l.f.Stat()
	if err != nil {
		return false, err
	}
	now, err := os.Stat(filepath.Join(l.dir, LockFileName))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return os.SameFile(held, now), nil
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
// creating anything. It takes a shared lock for an instant: a holder's
// exclusive lock makes that fail.
func probeDir(dir string) (held bool, err error) {
	f, err := os.OpenFile(filepath.Join(dir, LockFileName), os.O_RDONLY|syscall.O_CLOEXEC, 0)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return true, nil
		}
		return false, err
	}
	return false, nil
}
