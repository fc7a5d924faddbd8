package sessions

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// checkCreateAs refuses to create a missing sessions root as root inside a
// directory that belongs to another user (the service's data dir): the
// service could not open what root makes there and would fail to start
// (issue 17). The operator is told to run wactl as that user instead.
func checkCreateAs(root string) error {
	if os.Geteuid() != 0 {
		return nil // another user's directory refuses us by itself
	}
	for p := filepath.Dir(root); ; p = filepath.Dir(p) {
		st, err := os.Stat(p)
		if err == nil {
			sys, ok := st.Sys().(*syscall.Stat_t)
			if !ok || sys.Uid == 0 {
				return nil
			}
			owner := sudoUser(int(sys.Uid))
			return &RootError{
				Root: root,
				Problem: fmt.Sprintf("does not exist, and %s belongs to %s: what root creates there the service cannot read",
					p, describeUser(int(sys.Uid))),
				Fix:   fmt.Sprintf("run wactl as their owner: sudo -u %s wactl …", owner),
				Owner: owner,
			}
		}
		if !errors.Is(err, fs.ErrNotExist) || p == filepath.Dir(p) {
			return nil
		}
	}
}

// deniedRoot explains a sessions root this user may not even look at: it
// is another user's (the service's), and wactl runs as them.
func deniedRoot(root string, err error) error {
	for p := filepath.Dir(root); ; p = filepath.Dir(p) {
		if st, serr := os.Stat(p); serr == nil {
			if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != os.Geteuid() {
				owner := sudoUser(int(sys.Uid))
				return &RootError{Root: root, Owner: owner,
					Problem: fmt.Sprintf("cannot be read by %s (%v): %s belongs to %s", describeUser(os.Geteuid()), unwrapErrno(err), p, describeUser(int(sys.Uid))),
					Fix:     fmt.Sprintf("run wactl as their owner: sudo -u %s wactl …", owner)}
			}
			break
		}
		if p == filepath.Dir(p) {
			break
		}
	}
	return fmt.Errorf("sessions root %s: %w", root, err)
}

func unwrapErrno(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// MissingError: a read-only command found no sessions root; nothing was
// created.
type MissingError struct{ Root string }

func (e *MissingError) Error() string { return "no sessions directory " + e.Root }

// OpenExisting opens a sessions root for reading only: it creates nothing
// and writes nothing (no probe), for commands that only look (accounts
// list). A missing root is a *MissingError.
func OpenExisting(root string, opts Options) (*Store, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("sessions root %q: %w", root, err)
	}
	st, err := os.Stat(abs)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &MissingError{Root: abs}
	}
	if err != nil {
		return nil, fmt.Errorf("sessions root %s: %w", abs, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("sessions root %s is not a directory: point SESSIONS_PATH at a directory", abs)
	}
	s := &Store{root: abs, instance: opts.InstanceID, log: opts.Logger, now: opts.Now}
	if s.instance == "" {
		s.instance, _ = os.Hostname()
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if opts.Postgres != nil {
		pg, err := openPostgres(*opts.Postgres, s.log)
		if err != nil {
			return nil, err
		}
		s.pg = pg
	}
	return s, nil
}
