package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/wactl/wactl/pkg/config"
	"github.com/wactl/wactl/pkg/pair"
)

// AdminSocketName is the daemon's local admin socket in the data dir. It is
// how `wactl pair` reaches a running daemon: a Unix socket with mode 0600 in
// a 0700 directory, never exposed on the network.
const AdminSocketName = "wactl.sock"

// adminServer serves the local admin API over a Unix socket, and under
// systemd over a second one in the runtime directory (adminruntime.go).
type adminServer struct {
	d       *Daemon
	srv     *http.Server
	ln      net.Listener
	runtime *runtimeSocket // nil when not under systemd's RuntimeDirectory=
}

func listenAdmin(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	// A socket left by a killed daemon blocks Listen. Remove it only if
	// nothing answers on it: a live daemon's socket is never taken over.
	if c, err := net.DialTimeout("unix", path, 200*time.Millisecond); err == nil {
		c.Close()
		return nil, fmt.Errorf("admin socket %s: another wactl daemon is running on this data dir", path)
	}
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("admin socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

func (d *Daemon) startAdmin(path string) (*adminServer, error) {
	ln, err := listenAdmin(path)
	if err != nil {
		return nil, err
	}
	a := &adminServer{d: d, ln: ln}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/pair", a.pair)
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(d.Status())
	})
	// No body or write deadline: a pairing streams for minutes. The socket
	// is 0600 in a 0700 directory; headers are still bounded.
	a.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: maxHeaderBytes,
		ErrorLog: slog.NewLogLogger(d.log.With("component", "admin").Handler(), slog.LevelWarn)}
	go a.srv.Serve(ln)
	if rt, err := listenRuntime(filepath.Dir(path)); err != nil {
		d.log.Warn("admin socket in the runtime directory not available: commands without the config file will not find this daemon", "err", err)
	} else if rt != nil {
		a.runtime = rt
		go a.srv.Serve(rt.ln)
	}
	return a, nil
}

func (a *adminServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = a.srv.Shutdown(ctx)
	_ = os.Remove(a.ln.Addr().String())
	a.runtime.remove()
}

// pair streams the pairing as JSON lines (pair.Event); the last line is the
// outcome. The pairing is cancelled when the operator disconnects.
func (a *adminServer) pair(w http.ResponseWriter, r *http.Request) {
	req, err := parsePairRequest(r.Body)
	if err != nil {
		http.Error(w, "bad pair request: "+err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	var mu sync.Mutex
	enc := json.NewEncoder(w)
	sawOutcome := false
	emit := func(e pair.Event) {
		mu.Lock()
		defer mu.Unlock()
		if e.Kind == pair.KindOutcome {
			sawOutcome = true
		}
		_ = enc.Encode(e)
		if flusher != nil {
			flusher.Flush()
		}
	}
	_, err = a.d.mgr.Pair(r.Context(), req, emit)
	if err != nil && !sawOutcome {
		emit(pair.Event{Kind: pair.KindOutcome, Outcome: pair.OutcomeError, Error: err.Error()})
	}
}

// AdminClient talks to a running daemon's admin socket.
type AdminClient struct {
	path string
	http *http.Client
}

// ErrNoDaemon means no daemon answers on the admin socket.
var ErrNoDaemon = errors.New("no running wactl daemon on this data dir")

// DialAdmin returns a client for the daemon of dataDir: its socket in the
// data dir, else the one in the service's runtime directory when the
// service published that data dir there (config.RuntimeDir). It returns
// ErrNoDaemon when nothing answers, and a *NotAllowedError (errors.Is
// ErrNotAllowed) when a socket or the data dir exists but this user may
// not reach it: that is not "no daemon", and falling back to pairing
// locally would be wrong.
func DialAdmin(dataDir string) (*AdminClient, error) {
	return DialAdminAt(dataDir, config.RuntimeDir(nil))
}

// DialAdminAt is DialAdmin with the runtime directory given.
func DialAdminAt(dataDir, runtimeDir string) (*AdminClient, error) {
	var denied []string
	try := func(path string) *AdminClient {
		c, err := net.DialTimeout("unix", path, time.Second)
		if err != nil {
			if isDenied(err) {
				denied = append(denied, path)
			}
			return nil
		}
		c.Close()
		tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}}
		return &AdminClient{path: path, http: &http.Client{Transport: tr}}
	}
	if c := try(filepath.Join(dataDir, AdminSocketName)); c != nil {
		return c, nil
	}
	if runtimeDir != "" {
		published, err := os.ReadFile(filepath.Join(runtimeDir, config.RuntimeDataDirFile))
		switch {
		case err == nil && filepath.Clean(strings.TrimSpace(string(published))) == filepath.Clean(dataDir):
			if c := try(filepath.Join(runtimeDir, AdminSocketName)); c != nil {
				return c, nil
			}
		case err != nil && isDenied(err) && len(denied) > 0:
			// Neither the data dir nor the runtime dir is ours to read.
			denied = append(denied, filepath.Join(runtimeDir, AdminSocketName))
		}
	}
	if len(denied) > 0 {
		return nil, newNotAllowed(dataDir, runtimeDir, denied[len(denied)-1])
	}
	return nil, ErrNoDaemon
}

// Path is the socket the client talks to.
func (c *AdminClient) Path() string { return c.path }

// Pair asks the daemon to pair and passes every event to events; it
// returns the outcome event.
func (c *AdminClient) Pair(ctx context.Context, req PairRequest, events func(pair.Event)) (pair.Event, error) {
	body, _ := json.Marshal(req)
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://wactl/v1/pair", bytes.NewReader(body))
	if err != nil {
		return pair.Event{}, err
	}
	resp, err := c.http.Do(hreq)
	if err != nil {
		return pair.Event{}, fmt.Errorf("daemon admin socket: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return pair.Event{}, fmt.Errorf("daemon refused the pairing: %s", b)
	}
	dec := json.NewDecoder(resp.Body)
	for {
		var e pair.Event
		if err := dec.Decode(&e); err != nil {
			if ctx.Err() != nil {
				return pair.Event{Kind: pair.KindOutcome, Outcome: pair.OutcomeCancelled}, ctx.Err()
			}
			return pair.Event{}, fmt.Errorf("daemon closed the pairing stream early: %w", err)
		}
		if events != nil {
			events(e)
		}
		if e.Kind == pair.KindOutcome {
			return e, nil
		}
	}
}

// Status reads the daemon's status.
func (c *AdminClient) Status(ctx context.Context) (Status, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://wactl/v1/status", nil)
	resp, err := c.http.Do(req)
	if err != nil {
		return Status{}, err
	}
	defer resp.Body.Close()
	var s Status
	return s, json.NewDecoder(resp.Body).Decode(&s)
}
