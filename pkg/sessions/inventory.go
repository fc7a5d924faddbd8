package sessions

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

const (
	removedDirName  = "removed"
	legacyOrphanDir = "_orphaned" // where the old system moved sessions aside
	legacyCreds     = "creds.json"
)

// Baileys (old system) per-account files; see legacy-contract.md.
var legacyFilePrefixes = []string{"pre-key-", "session-", "sender-key-", "app-state-sync-key-", "app-state-sync-version-"}

// ProblemKind classifies what inventory found wrong.
type ProblemKind string

const (
	ProblemStrayFile       ProblemKind = "stray-file"        // unknown file or symlink
	ProblemBadDirName      ProblemKind = "bad-dir-name"      // directory name is not an account id
	ProblemMissingMetadata ProblemKind = "missing-metadata"  // account dir without account.json
	ProblemBadMetadata     ProblemKind = "bad-metadata"      // account.json unreadable or invalid
	ProblemCorruptStore    ProblemKind = "corrupt-store"     // whatsmeow.db damaged or not a database
	ProblemUnreadable      ProblemKind = "unreadable"        // permission or I/O error
	ProblemLoosePerms      ProblemKind = "loose-permissions" // readable/writable by others
	ProblemTempLeftover    ProblemKind = "temp-leftover"     // from an interrupted atomic write
	ProblemLegacyOrphaned  ProblemKind = "legacy-orphaned"   // old system's _orphaned/ sessions
	ProblemWALNotRead      ProblemKind = "wal-not-read"      // another user's -wal without its -shm (WALNotReadError)
)

// Problem is one finding, with the path it concerns. Nothing is ever fixed
// or deleted by inventory; Detail says what to do.
type Problem struct {
	Kind    ProblemKind `json:"kind"`
	Path    string      `json:"path"`
	Account string      `json:"accountId,omitempty"`
	Detail  string      `json:"detail"`
}

// AccountStatus is one valid account directory.
type AccountStatus struct {
	ID         string     `json:"accountId"`
	Dir        string     `json:"dir"`
	Account    *Account   `json:"account,omitempty"` // nil when metadata is missing/bad
	Store      StoreState `json:"store"`
	DeviceJID  string     `json:"deviceJid,omitempty"`
	StoreError string     `json:"storeError,omitempty"`
	Legacy     bool       `json:"legacyBaileys,omitempty"` // creds.json present
	InUse      bool       `json:"inUse,omitempty"`
	Holder     *Holder    `json:"holder,omitempty"`
}

// Counts are the totals doctor reports.
type Counts struct {
	AccountDirs     int `json:"accountDirs"`
	Paired          int `json:"paired"`
	Unpaired        int `json:"unpaired"` // missing or empty store
	Corrupt         int `json:"corrupt"`
	Unreadable      int `json:"unreadable"`
	MissingMetadata int `json:"missingMetadata"`
	LegacyBaileys   int `json:"legacyBaileys"` // dirs (any name) with creds.json
	InUse           int `json:"inUse"`
	StrayFiles      int `json:"strayFiles"`
	BadDirNames     int `json:"badDirNames"`
	Removed         int `json:"removed"` // entries under removed/
}

// Inventory is a read-only survey of the sessions root.
type Inventory struct {
	Root     string          `json:"root"`
	Accounts []AccountStatus `json:"accounts"`
	Problems []Problem       `json:"problems"`
	Counts   Counts          `json:"counts"`
}

// Inventory surveys every entry of the root, including a full quick_check of
// each database. It never creates, changes or deletes anything, and an
// unreadable or damaged entry is reported, not returned as an error; the
// error is only for an unreadable root.
func (s *Store) Inventory(ctx context.Context) (*Inventory, error) {
	return s.scan(ctx, true)
}

// List is Inventory without the page-by-page database check: it still reads
// metadata, pairing state and lock holders, for `wactl accounts list`.
func (s *Store) List(ctx context.Context) ([]AccountStatus, error) {
	inv, err := s.scan(ctx, false)
	if err != nil {
		return nil, err
	}
	return inv.Accounts, nil
}

func (s *Store) scan(ctx context.Context, deep bool) (*Inventory, error) {
	if s.pg != nil {
		return s.pg.scan(ctx, s)
	}
	entries, err := os.ReadDir(s.root)
	if err != nil {
		return nil, fmt.Errorf("read sessions root %s: %w", s.root, err)
	}
	inv := &Inventory{Root: s.root, Accounts: []AccountStatus{}, Problems: []Problem{}}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		name := e.Name()
		path := filepath.Join(s.root, name)
		switch {
		case e.Type()&os.ModeSymlink != 0:
			inv.problem(ProblemStrayFile, path, "", "symlink in the sessions root: wactl never follows it; move it away")
		case !e.IsDir():
			if strings.HasPrefix(name, tempPrefix) {
				inv.problem(ProblemTempLeftover, path, "", "left by an interrupted write probe; safe to delete")
			} else {
				inv.problem(ProblemStrayFile, path, "", "file that is not an account directory; move it out of the sessions root")
			}
		case name == removedDirName:
			if sub, err := os.ReadDir(path); err == nil {
				inv.Counts.Removed = len(sub)
			} else {
				inv.problem(ProblemUnreadable, path, "", err.Error())
			}
		case name == legacyOrphanDir:
			s.scanOrphaned(inv, path)
		case ValidAccountID(name) != nil:
			detail := "directory name is not an account id; wactl ignores it"
			if fileExists(filepath.Join(path, legacyCreds)) {
				inv.Counts.LegacyBaileys++
				detail += " (it holds a legacy Baileys session: creds.json)"
			}
			inv.problem(ProblemBadDirName, path, "", detail)
		default:
			inv.Accounts = append(inv.Accounts, s.scanAccount(ctx, inv, name, deep))
		}
	}
	sort.Slice(inv.Accounts, func(i, j int) bool { return inv.Accounts[i].ID < inv.Accounts[j].ID })
	for _, p := range inv.Problems {
		switch p.Kind {
		case ProblemStrayFile:
			inv.Counts.StrayFiles++
		case ProblemBadDirName:
			inv.Counts.BadDirNames++
		}
	}
	return inv, nil
}

func (inv *Inventory) problem(kind ProblemKind, path, account, detail string) {
	inv.Problems = append(inv.Problems, Problem{Kind: kind, Path: path, Account: account, Detail: detail})
}

func (s *Store) scanOrphaned(inv *Inventory, path string) {
	sub, err := os.ReadDir(path)
	if err != nil {
		inv.problem(ProblemUnreadable, path, "", err.Error())
		return
	}
	withCreds := 0
	for _, e := range sub {
		if e.IsDir() && fileExists(filepath.Join(path, e.Name(), legacyCreds)) {
			withCreds++
		}
	}
	inv.Counts.LegacyBaileys += withCreds
	inv.problem(ProblemLegacyOrphaned, path, "", fmt.Sprintf(
		"%d entries moved aside by the old system (%d with creds.json); they are not restored: re-pair those accounts or migrate them explicitly", len(sub), withCreds))
}

func (s *Store) scanAccount(ctx context.Context, inv *Inventory, id string, deep bool) AccountStatus {
	dir := s.Dir(id)
	st := AccountStatus{ID: id, Dir: dir}
	inv.Counts.AccountDirs++
	s.checkPerms(inv, dir, id, dirMode)

	entries, err := os.ReadDir(dir)
	if err != nil {
		st.Store, st.StoreError = StoreUnreadable, err.Error()
		inv.Counts.Unreadable++
		inv.problem(ProblemUnreadable, dir, id, err.Error())
		return st
	}
	for _, e := range entries {
		name := e.Name()
		path := filepath.Join(dir, name)
		switch {
		case name == metadataFile || name == lockFile || name == "replica.json": // replica.json: pkg/replica.LocalFile
			s.checkPerms(inv, path, id, fileMode)
		case name == dbFile || isCompanion(name):
			s.checkPerms(inv, path, id, fileMode)
		case name == legacyCreds:
			st.Legacy = true
		case isLegacyFile(name):
		case strings.HasPrefix(name, tempPrefix):
			inv.problem(ProblemTempLeftover, path, id, "left by an interrupted metadata write; account.json is intact; safe to delete")
		default:
			inv.problem(ProblemStrayFile, path, id, "unknown file in an account directory; wactl ignores it")
		}
	}
	if st.Legacy {
		inv.Counts.LegacyBaileys++
	}

	acct, err := readMetadata(dir, id)
	switch {
	case err == nil:
		st.Account = acct
	case errors.Is(err, ErrNoMetadata):
		inv.Counts.MissingMetadata++
		inv.problem(ProblemMissingMetadata, filepath.Join(dir, metadataFile), id,
			"account.json is missing; the session still restores, but name and phone are unknown (wactl pair --account recreates it)")
	default:
		inv.problem(ProblemBadMetadata, filepath.Join(dir, metadataFile), id, err.Error())
	}

	state, jid, err := inspectDB(ctx, filepath.Join(dir, dbFile), deep)
	st.Store, st.DeviceJID = state, jid
	if err != nil {
		st.StoreError = err.Error()
	}
	var walErr *WALNotReadError
	if errors.As(err, &walErr) {
		inv.problem(ProblemWALNotRead, walErr.Path, id, walErr.Error())
	}
	switch state {
	case StorePaired:
		inv.Counts.Paired++
	case StoreMissing, StoreUnpaired:
		inv.Counts.Unpaired++
	case StoreCorrupt:
		inv.Counts.Corrupt++
		inv.problem(ProblemCorruptStore, filepath.Join(dir, dbFile), id,
			fmt.Sprintf("%s; the account must be re-paired (wactl accounts remove %s keeps a copy under removed/)", st.StoreError, id))
	case StoreUnreadable:
		inv.Counts.Unreadable++
		inv.problem(ProblemUnreadable, filepath.Join(dir, dbFile), id, st.StoreError)
	}
	st.InUse, st.Holder = lockHeld(dir)
	if st.InUse {
		inv.Counts.InUse++
	}
	return st
}

func (s *Store) checkPerms(inv *Inventory, path, id string, want os.FileMode) {
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode()&os.ModeSymlink != 0 {
		return
	}
	if fi.Mode().Perm()&^want != 0 {
		inv.problem(ProblemLoosePerms, path, id, fmt.Sprintf("mode %04o gives access to other users; fix: chmod %o %s", fi.Mode().Perm(), want, shellQuote(path)))
	}
}

func isCompanion(name string) bool {
	for _, c := range dbCompanions {
		if name == dbFile+c {
			return true
		}
	}
	return false
}

func isLegacyFile(name string) bool {
	if !strings.HasSuffix(name, ".json") {
		return false
	}
	for _, p := range legacyFilePrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

func fileExists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
