package sessions

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

const (
	dirMode  fs.FileMode = 0o700
	fileMode fs.FileMode = 0o600
)

// mkdirPrivate creates dir with mode 0700 whatever the umask, and makes the
// new entry durable. An existing directory is left as it is (ok=false).
func mkdirPrivate(dir string) (created bool, err error) {
	if err := os.Mkdir(dir, dirMode); err != nil {
		if errors.Is(err, fs.ErrExist) {
			st, serr := os.Lstat(dir)
			if serr == nil && st.IsDir() {
				return false, nil
			}
			return false, fmt.Errorf("%s exists and is not a directory: move it away", dir)
		}
		return false, err
	}
	// The umask can only clear bits, but a umask such as 0200 would leave the
	// owner unable to write; chmod states the mode exactly.
	if err := os.Chmod(dir, dirMode); err != nil {
		return true, err
	}
	return true, syncDir(filepath.Dir(dir))
}

// createPrivate creates a new file (O_EXCL) with mode 0600 whatever the umask.
func createPrivate(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, fileMode)
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(fileMode); err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	return f, nil
}

// writeFileAtomic replaces path with data so that a crash at any point leaves
// either the old content or the new, never a torn file: the data goes to a
// temp file in the same directory, is fsynced, renamed over path, and the
// directory is fsynced so the rename itself survives a power cut.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp := filepath.Join(dir, tempPrefix+filepath.Base(path)+"."+randomHex(6))
	f, err := createPrivate(tmp)
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	crashPoint("written")
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	crashPoint("synced")
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	crashPoint("renamed")
	return syncDir(dir)
}

// crashHook lets tests kill the process between the steps of an atomic
// write, to check that every crash point leaves a whole file.
var crashHook func(stage string)

func crashPoint(stage string) {
	if crashHook != nil {
		crashHook(stage)
	}
}

// tempPrefix marks files an interrupted writeFileAtomic can leave behind;
// inventory reports them instead of treating them as unknown strays.
const tempPrefix = ".tmp-"

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b)
}
