package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// ErrNotAllowed: a daemon's socket (or the data dir holding it) exists, but
// this user may not reach it. It is not ErrNoDaemon: the service may well
// be running, and doing the work locally instead would split the state.
var ErrNotAllowed = errors.New("not allowed to reach the wactl daemon")

// NotAllowedError says which socket was refused and who may use it.
type NotAllowedError struct {
	Path  string // the socket (or directory) that refused
	Owner string // the data dir's owner: the service user
	Group string // the group that may use the runtime socket; "" if none
}

func (e *NotAllowedError) Error() string {
	msg := fmt.Sprintf("%v at %s (permission denied). Run the command as the service user: %s", ErrNotAllowed, e.Path, e.SudoPrefix()+"…")
	if e.Group != "" {
		msg += fmt.Sprintf(", or join its group (sudo usermod -aG %s $USER, then log in again)", e.Group)
	}
	return msg
}

func (e *NotAllowedError) Is(target error) bool { return target == ErrNotAllowed }

// SudoPrefix is how to run wactl as the owner: "sudo -u wactl wactl ".
func (e *NotAllowedError) SudoPrefix() string { return SudoAs(e.Owner) }

// SudoAs is the command prefix that runs wactl as user (a name, or #uid).
func SudoAs(user string) string {
	if user == "" {
		user = "wactl"
	}
	return "sudo -u " + user + " wactl "
}

func newNotAllowed(dataDir, runtimeDir, path string) *NotAllowedError {
	e := &NotAllowedError{Path: path}
	if uid, _, ok := OwnerOf(dataDir); ok {
		e.Owner = UserName(uid)
	}
	if _, gid, ok := OwnerOf(runtimeDir); ok && gid != 0 {
		if g, err := user.LookupGroupId(strconv.Itoa(gid)); err == nil {
			e.Group = g.Name
		}
	}
	return e
}

// OwnerOf is the owner of path, or of its nearest existing parent.
func OwnerOf(path string) (uid, gid int, ok bool) {
	for p := path; p != ""; {
		st, err := os.Stat(p)
		if err == nil {
			if sys, ok := st.Sys().(*syscall.Stat_t); ok {
				return int(sys.Uid), int(sys.Gid), true
			}
			return 0, 0, false
		}
		parent := parentDir(p)
		if parent == p {
			break
		}
		p = parent
	}
	return 0, 0, false
}

func parentDir(p string) string {
	for i := len(p) - 1; i > 0; i-- {
		if p[i] == '/' {
			return p[:i]
		}
	}
	return "/"
}

// UserName is uid's login name, or "#uid" (sudo's spelling) when it has none.
func UserName(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil && u.Username != "" {
		return u.Username
	}
	return "#" + strconv.Itoa(uid)
}

func isDenied(err error) bool {
	return errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM)
}
