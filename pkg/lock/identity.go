package lock

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
)

// newSession returns a token naming one process's tenure. It is random on
// purpose: unlike the instance id it must differ between two runs, so that a
// restarted process can tell its own live lease from its predecessor's.
func newSession() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func hostOr(h string) (string, error) {
	if h != "" {
		return h, nil
	}
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "", fmt.Errorf("lock: cannot read the host name (%v): pass Host in the options", err)
	}
	return h, nil
}

func absDir(d string) (string, error) {
	if d == "" {
		return "", nil
	}
	a, err := filepath.Abs(d)
	if err != nil {
		return "", fmt.Errorf("lock: data dir %q: %w", d, err)
	}
	return filepath.Clean(a), nil
}
