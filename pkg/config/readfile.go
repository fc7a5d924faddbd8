package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// Size limits of what the loader reads (issue 16 item 8): a *_FILE
// variable pointed at /dev/zero or a log once grew `config validate` to
// 23 GB. A secret file holds one value; a config file is a page of YAML.
const (
	MaxSecretFileBytes = 64 << 10
	MaxConfigFileBytes = 4 << 20
)

// errNotRegular is wrapped with the path by the callers, which know
// whether it is a secret or the config file.
var errNotRegular = errors.New("not a regular file (a device, pipe, socket or directory); point it at a file")

func limitText(limit int64) string {
	if limit >= 1<<20 {
		return fmt.Sprintf("%d MiB", limit>>20)
	}
	return fmt.Sprintf("%d KiB", limit>>10)
}

// readRegular reads a regular file of at most limit bytes. It never blocks
// on a FIFO (opened non-blocking and refused) and never reads past limit.
func readRegular(path string, limit int64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "read", Path: path, Err: errNotRegular}
	}
	if st.Size() > limit {
		return nil, &fs.PathError{Op: "read", Path: path, Err: tooLarge(limit)}
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit { // grew while we read
		return nil, &fs.PathError{Op: "read", Path: path, Err: tooLarge(limit)}
	}
	return b, nil
}

func tooLarge(limit int64) error {
	if limit == MaxSecretFileBytes {
		return fmt.Errorf("larger than %s; a secret file holds one value (is it the right file?)", limitText(limit))
	}
	return fmt.Errorf("larger than %s; is it the right file?", limitText(limit))
}

// read reads path with a limit: from the real filesystem, or from the
// injected ReadFile of tests (which gets the size check too).
func (o *LoadOptions) read(path string, limit int64) ([]byte, error) {
	if o.ReadFile == nil {
		return readRegular(path, limit)
	}
	b, err := o.ReadFile(path)
	if err == nil && int64(len(b)) > limit {
		return nil, &fs.PathError{Op: "read", Path: path, Err: tooLarge(limit)}
	}
	return b, err
}
