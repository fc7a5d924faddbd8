package replica

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// LocalFile is kept in each account directory beside account.json: the
// replica generation the local session was last in step with (the copy
// this host wrote from it, or restored into it). The restore compares it
// with the copy's generation instead of file times: a copy with a higher
// generation was written by a later holder, one with the same or a lower
// generation is not newer than what is here.
const LocalFile = "replica.json"

// PurgedSuffix names the tombstone `wactl accounts remove --purge` leaves
// under <sessions>/removed/ (<UTC time>-<id>.purged), so that a start
// without Firestore's copy deleted does not bring the account back.
const PurgedSuffix = ".purged"

type localState struct {
	AccountID  string    `json:"accountId,omitempty"`
	Generation int64     `json:"generation"`
	At         time.Time `json:"at,omitzero"`
}

// LocalGeneration reads an account directory's LocalFile; false when there
// is none (a session from before generations were kept, or never copied).
func LocalGeneration(dir string) (int64, bool) {
	data, err := os.ReadFile(filepath.Join(dir, LocalFile))
	if err != nil {
		return 0, false
	}
	var st localState
	if json.Unmarshal(data, &st) != nil || st.Generation < 0 {
		return 0, false
	}
	return st.Generation, true
}

// WriteLocalGeneration records that the session in dir is in step with
// generation gen of its copy: mode 0600, atomically (temp file, fsync,
// rename), so a crash leaves the old value or the new one.
func WriteLocalGeneration(dir, id string, gen int64, now time.Time) error {
	data, _ := json.Marshal(localState{AccountID: id, Generation: gen, At: now.UTC()})
	return writeFileAtomic(filepath.Join(dir, LocalFile), append(data, '\n'))
}

// WritePurgedMarker leaves the tombstone of a purged account: its last
// local generation and when, in <sessionsRoot>/removed/.
func WritePurgedMarker(sessionsRoot, id string, gen int64, now time.Time) (string, error) {
	dir := filepath.Join(sessionsRoot, "removed")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	path := filepath.Join(dir, now.UTC().Format("20060102T150405Z")+"-"+id+PurgedSuffix)
	data, _ := json.Marshal(localState{AccountID: id, Generation: gen, At: now.UTC()})
	return path, writeFileAtomic(path, append(data, '\n'))
}

// Removal is the latest trace on this host of an operator's removal of an
// account: `accounts remove` (the directory under removed/) or `--purge`
// (the .purged tombstone). Generation is the local generation the removed
// session was at (0: unknown).
type Removal struct {
	At         time.Time
	Generation int64
	Path       string
}

// LastRemoval finds the latest removal of id under <sessionsRoot>/removed/
// (entries <UTC time>-<id>, <UTC time>-<id>.N, <UTC time>-<id>.purged);
// the copies a restore set aside (….before-restore) are not removals.
// ok is false when there is none.
func LastRemoval(sessionsRoot, id string) (Removal, bool) {
	root := filepath.Join(sessionsRoot, "removed")
	entries, err := os.ReadDir(root)
	if err != nil {
		return Removal{}, false
	}
	var last Removal
	found := false
	for _, e := range entries {
		stamp, rest, ok := strings.Cut(e.Name(), "-")
		if !ok || strings.Contains(rest, ".before-restore") {
			continue
		}
		purged := strings.HasSuffix(rest, PurgedSuffix)
		name, n, _ := strings.Cut(strings.TrimSuffix(rest, PurgedSuffix), ".")
		if name != id || strings.Trim(n, "0123456789") != "" {
			continue
		}
		t, err := time.Parse("20060102T150405Z", stamp)
		if err != nil || found && !t.After(last.At) {
			continue
		}
		path := filepath.Join(root, e.Name())
		var gen int64
		if purged {
			if data, err := os.ReadFile(path); err == nil {
				var st localState
				if json.Unmarshal(data, &st) == nil {
					gen = st.Generation
				}
			}
		} else {
			gen, _ = LocalGeneration(path)
		}
		last, found = Removal{At: t, Generation: gen, Path: path}, true
	}
	return last, found
}

// CoveredBy reports whether the copy described by in is one the removal
// took out of service: not written after the removal, or not above the
// removed session's generation. Either is enough: a copy restores a
// removed account only when it is both newer and later (the account was
// paired or used again elsewhere after it was removed here).
func (rm Removal) CoveredBy(in *Info) bool {
	if rm.Generation > 0 && in.Generation <= rm.Generation {
		return true
	}
	written := in.WrittenAt
	if written.IsZero() {
		written = in.SnapshotAt
	}
	// removed/ names have whole seconds.
	return !written.After(rm.At.Add(time.Second))
}

func writeFileAtomic(path string, data []byte) error {
	// The sessions inventory reports a leftover .tmp-* file as such.
	tmp := filepath.Join(filepath.Dir(path), fmt.Sprintf(".tmp-%s-%d", filepath.Base(path), time.Now().UnixNano()))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
