package sessions

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"
)

// RootError explains why a sessions root is unsafe and how to fix it.
type RootError struct {
	Root    string
	Problem string
	Fix     string // a shell command
	// Owner is the user the root belongs to when that is the problem: the
	// fix is to run wactl as them (sudo -u), never to take it from them.
	Owner string
}

func (e *RootError) Error() string {
	return fmt.Sprintf("sessions root %s %s; fix: %s", e.Root, e.Problem, e.Fix)
}

// CheckRoot reports whether root is safe to keep sessions in: a directory
// owned by the effective user and not writable by group or others. doctor
// calls it to report; Open calls it to refuse.
func CheckRoot(root string) error {
	st, err := os.Stat(root)
	if err != nil {
		return fmt.Errorf("sessions root %s: %w", root, err)
	}
	if !st.IsDir() {
		return &RootError{Root: root, Problem: "is not a directory", Fix: "point SESSIONS_PATH at a directory"}
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	euid := os.Geteuid()
	if int(sys.Uid) != euid {
		e := &RootError{
			Root:    root,
			Problem: fmt.Sprintf("is owned by %s, not by the user running wactl (%s)", describeUser(int(sys.Uid)), describeUser(euid)),
		}
		if sys.Uid == 0 {
			// Root's files taken by the user: nothing of a service breaks.
			e.Fix = fmt.Sprintf("sudo chown -R %s:%s %s", userName(euid), groupName(os.Getegid()), shellQuote(root))
		} else {
			// Another user's sessions (the service's): a chown would take
			// them away and the service would stop working (issue 17).
			e.Owner = sudoUser(int(sys.Uid))
			e.Fix = fmt.Sprintf("run wactl as their owner: sudo -u %s wactl …", e.Owner)
		}
		return e
	}
	if perm := st.Mode().Perm(); perm&0o022 != 0 {
		who := "others"
		if perm&0o002 == 0 {
			who = "its group"
		} else if perm&0o020 != 0 {
			who = "group and others"
		}
		return &RootError{
			Root:    root,
			Problem: fmt.Sprintf("is writable by %s (mode %04o), so they could replace session keys", who, perm),
			Fix:     "chmod 700 " + shellQuote(root),
		}
	}
	return nil
}

func userName(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil && u.Username != "" {
		return u.Username
	}
	return strconv.Itoa(uid)
}

// sudoUser is uid as sudo -u takes it: the name, or #uid.
func sudoUser(uid int) string {
	name := userName(uid)
	if name == strconv.Itoa(uid) {
		return "'#" + name + "'"
	}
	return name
}

func groupName(gid int) string {
	if g, err := user.LookupGroupId(strconv.Itoa(gid)); err == nil && g.Name != "" {
		return g.Name
	}
	return strconv.Itoa(gid)
}

func describeUser(uid int) string {
	name := userName(uid)
	if name == strconv.Itoa(uid) {
		return "uid " + name
	}
	return fmt.Sprintf("%s (uid %d)", name, uid)
}

// shellQuote makes a path safe to paste into the suggested command.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r == '/' || r == '.' || r == '_' || r == '-' || r == '+' || r == ':' ||
			'0' <= r && r <= '9' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z')
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
