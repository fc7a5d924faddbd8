package daemon

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/wactl/wactl/pkg/config"
)

// runtimeSocket is the daemon's second admin socket, in the runtime
// directory systemd makes for the unit (RuntimeDirectory=wactl, mode 0750,
// group wactl), next to a file naming the data dir. It lets every command
// on the host find the service without the config file, and it is how an
// operator who is not the service user pairs: the socket is 0660, so the
// members of the service's group may connect; others are told to use
// sudo -u (NotAllowedError). The socket in the data dir stays 0600.
type runtimeSocket struct {
	ln      net.Listener
	path    string
	pointer string
	dataDir string
}

// listenRuntime binds the runtime socket when the daemon runs under
// systemd's RuntimeDirectory= ($RUNTIME_DIRECTORY is set); nil otherwise.
func listenRuntime(dataDir string) (*runtimeSocket, error) {
	if v, ok := os.LookupEnv("RUNTIME_DIRECTORY"); !ok || v == "" {
		return nil, nil
	}
	dir := config.RuntimeDir(nil)
	path := filepath.Join(dir, AdminSocketName)
	if c, err := net.DialTimeout("unix", path, 200*time.Millisecond); err == nil {
		c.Close()
		return nil, fmt.Errorf("admin socket %s: another wactl daemon answers there", path)
	}
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("admin socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, err
	}
	rt := &runtimeSocket{ln: ln, path: path, pointer: filepath.Join(dir, config.RuntimeDataDirFile), dataDir: dataDir}
	tmp := rt.pointer + ".tmp"
	if err := os.WriteFile(tmp, []byte(dataDir+"\n"), 0o644); err != nil {
		ln.Close()
		return nil, err
	}
	if err := os.Chmod(tmp, 0o644); err != nil { // whatever the umask
		ln.Close()
		return nil, err
	}
	if err := os.Rename(tmp, rt.pointer); err != nil {
		ln.Close()
		return nil, err
	}
	return rt, nil
}

// remove takes the socket and the pointer away, unless another daemon has
// published itself there since.
func (rt *runtimeSocket) remove() {
	if rt == nil {
		return
	}
	rt.ln.Close()
	if b, err := os.ReadFile(rt.pointer); err == nil && strings.TrimSpace(string(b)) == rt.dataDir {
		_ = os.Remove(rt.pointer)
	}
	_ = os.Remove(rt.path)
}
