package sessions

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// RemoveOptions configures Remove.
type RemoveOptions struct {
	// Purge deletes the session for good instead of keeping it under removed/.
	Purge bool
}

// Remove takes an account out of service; it is an explicit operator action
// only. It waits for nobody: it refuses with *InUseError while any process
// holds the account. Without Purge the directory moves, whole, to
// <root>/removed/<UTC time>-<id>/ and the new path is returned; with Purge
// it is moved there first and then deleted, so an interrupted purge leaves a
// directory under removed/ rather than a half-deleted account.
func (s *Store) Remove(id string, opts RemoveOptions) (string, error) {
	if s.pg != nil {
		if err := ValidAccountID(id); err != nil {
			return "", err
		}
		return s.pg.remove(s, id, opts)
	}
	lock, err := s.Lock(id)
	if err != nil {
		return "", err
	}
	defer lock.Release()

	removed := filepath.Join(s.root, removedDirName)
	if _, err := mkdirPrivate(removed); err != nil {
		return "", fmt.Errorf("create %s: %w", removed, err)
	}
	stamp := s.now().UTC().Format("20060102T150405Z")
	dest := filepath.Join(removed, stamp+"-"+id)
	for n := 2; fileExists(dest); n++ {
		dest = filepath.Join(removed, fmt.Sprintf("%s-%s.%d", stamp, id, n))
	}
	// rename(2) is atomic: the account is either in service or removed.
	if err := os.Rename(s.Dir(id), dest); err != nil {
		return "", fmt.Errorf("move %s to %s: %w", s.Dir(id), dest, err)
	}
	if err := errors.Join(syncDir(s.root), syncDir(removed)); err != nil {
		return dest, err
	}
	s.log.Info("account removed", "account", id, "moved_to", dest, "purge", opts.Purge)
	if !opts.Purge {
		return dest, nil
	}
	if err := os.RemoveAll(dest); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return dest, fmt.Errorf("purge %s: %w (the rest is still there; delete it by hand)", dest, err)
	}
	return "", syncDir(removed)
}
