package lock

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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

// HolderPrefix marks a holderInstanceId written by wactl. The old Node
// service treats a lease whose holderInstanceId equals its own INSTANCE_ID
// as its own and "extends" it — going ACTIVE beside a wactl that runs with
// the same id (issue 15.1). wactl therefore writes "wactl:<instance id>",
// which no old-service id can equal: its ids are host names (INSTANCE_ID=%H),
// and wactl's configuration refuses ':' in an instance id, so stripping the
// prefix once is unambiguous. /health lockHolder, /ready heldBy and the
// 503's holderInstanceId show the document's value as written.
const HolderPrefix = "wactl:"

// HolderID is what a wactl process with instanceID writes to
// holderInstanceId.
func HolderID(instanceID string) string { return HolderPrefix + instanceID }

// InstanceOfHolder reads a holderInstanceId: the instance id and whether it
// carries wactl's prefix (a bare id is the old service's, or an earlier
// wactl version's, which wrote its id bare).
func InstanceOfHolder(holder string) (instanceID string, prefixed bool) {
	return strings.CutPrefix(holder, HolderPrefix)
}

// sameInstance: holder (a holderInstanceId as written) names instanceID,
// in wactl's form or bare (the old service's form, and what wactl wrote
// before the prefix).
func sameInstance(holder, instanceID string) bool {
	return holder == instanceID || holder == HolderID(instanceID)
}

// validInstanceID refuses ids that would make the prefix ambiguous.
func validInstanceID(id string) error {
	if strings.Contains(id, ":") {
		return fmt.Errorf("lock: instance id %q contains ':'; wactl writes its holder as %q<id> and an id with ':' could be read as another's: use letters, digits, '-', '_' and '.'", id, HolderPrefix)
	}
	return nil
}
