package sessions

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

const lockFile = ".lock"

// Holder identifies the process holding an account lock.
type Holder struct {
	PID      int       `json:"pid"`
	Instance string    `json:"instance"`
	Since    time.Time `json:"since"`
}

// InUseError is returned when another open file description holds the
// account lock — normally another process.
type InUseError struct {
	Account string
	Holder  *Holder // nil when the holder has not written its identity yet
}

func (e *InUseError) Error() string {
	if e.Holder == nil {
		return fmt.Sprintf("account %s is in use by another process (holder not recorded); stop it or wait for it to exit", e.Account)
	}
	return fmt.Sprintf("account %s is in use by PID %d (instance %s) since %s; stop that process or use it instead",
		e.Account, e.Holder.PID, e.Holder.Instance, e.Holder.Since.UTC().Format(time.RFC3339))
}

// Lock is an exclusive per-account OS lock (flock on <dir>/.lock). The kernel
// releases it when the process exits or crashes, so a stale lock file never
// blocks anyone; its content only names the last holder.
type Lock struct {
	account string
	f       *os.File
	release func() error // the PostgreSQL store's advisory lock instead of f
}

// A holder writes its identity right after flock succeeds; an opener that
// finds the lock held with no identity waits this long before reporting,
// which also rides out a doctor briefly probing the lock.
const lockIdentityGrace = 500 * time.Millisecond

// Lock takes account id's exclusive lock without waiting. It fails with
// *InUseError when the lock is held. The account directory must exist.
func (s *Store) Lock(id string) (*Lock, error) {
	if err := ValidAccountID(id); err != nil {
		return nil, err
	}
	if s.pg != nil {
		return s.pg.lock(s, id)
	}
	dir := s.Dir(id)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("%w: %s (no directory %s)", ErrNoAccount, id, dir)
	}
	path := filepath.Join(dir, lockFile)
	f, err := openLockFile(path)
	if err != nil {
		return nil, fmt.Errorf("open lock of %s: %w", id, err)
	}
	deadline := time.Now().Add(lockIdentityGrace)
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		h := readHolder(path)
		if h != nil && !pidAlive(h.PID) {
			// Identity left by a crashed holder: whoever holds the flock now
			// has not written its own yet.
			h = nil
		}
		if h != nil || time.Now().After(deadline) {
			f.Close()
			return nil, &InUseError{Account: id, Holder: h}
		}
		time.Sleep(20 * time.Millisecond)
	}
	h := Holder{PID: os.Getpid(), Instance: s.instance, Since: s.now().UTC()}
	data, _ := json.Marshal(h)
	if err := writeHolder(f, data); err != nil {
		f.Close()
		return nil, fmt.Errorf("record lock holder in %s: %w", path, err)
	}
	return &Lock{account: id, f: f}, nil
}

func openLockFile(path string) (*os.File, error) {
	f, err := createPrivate(path)
	if errors.Is(err, fs.ErrExist) {
		return os.OpenFile(path, os.O_RDWR, 0)
	}
	return f, err
}

func writeHolder(f *os.File, data []byte) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.WriteAt(data, 0)
	return err
}

// readHolder reads the identity of the lock's holder; nil if not recorded.
func readHolder(path string) *Holder {
	data, err := os.ReadFile(path)
	if err != nil || len(data) == 0 {
		return nil
	}
	var h Holder
	if json.Unmarshal(data, &h) != nil || h.PID == 0 {
		return nil
	}
	return &h
}

func pidAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// lockHeld reports whether some process holds the lock, by trying a shared
// lock and releasing it at once. Used only for reporting.
func lockHeld(dir string) (bool, *Holder) {
	path := filepath.Join(dir, lockFile)
	f, err := os.Open(path)
	if err != nil {
		return false, nil
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		return errors.Is(err, syscall.EWOULDBLOCK), readHolder(path)
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false, nil
}

// Account is the id the lock protects.
func (l *Lock) Account() string { return l.account }

// Release clears the holder identity and drops the lock. Safe to call twice.
func (l *Lock) Release() error {
	if l != nil && l.release != nil {
		r := l.release
		l.release = nil
		return r()
	}
	if l == nil || l.f == nil {
		return nil
	}
	// Clearing first means a reader never sees our identity on a free lock.
	terr := l.f.Truncate(0)
	cerr := l.f.Close() // closing the last descriptor releases the flock
	l.f = nil
	return errors.Join(terr, cerr)
}
