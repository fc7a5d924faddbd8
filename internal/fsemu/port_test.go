package fsemu

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"testing"
)

// TestStartRetriesWhenThePortIsTaken: the port picked for the emulator is
// taken before the JVM binds it (seen as "java.net.BindException: Address
// already in use" while other test binaries ran; the test using the
// emulator then skipped, or failed under CI). The emulator must start on
// another port.
func TestStartRetriesWhenThePortIsTaken(t *testing.T) {
	if _, err := os.Stat(Binary()); err != nil {
		unavailable(t, err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().(*net.TCPAddr).Port
	picks := pickFirst(t, taken)
	e, err := startRetrying(context.Background())
	if err != nil {
		t.Fatalf("emulator not started when its first port was taken: %v", err)
	}
	defer e.Stop()
	if e.Host == fmt.Sprintf("127.0.0.1:%d", taken) || *picks != 2 {
		t.Fatalf("emulator on %s after %d picks (port %d was taken)", e.Host, *picks, taken)
	}
}

// TestStartNeverAdoptsAnotherEmulator: the port picked is taken by another
// emulator (another test binary's, which picked the same free port a moment
// earlier). Its "Ok" must not count as ours: before, start returned an
// Emulator whose Host was the other process's while its own JVM had died on
// the bind, so Freeze stopped nothing (TestPrivateFreeze in CI: "read
// succeeded against a frozen emulator").
func TestStartNeverAdoptsAnotherEmulator(t *testing.T) {
	if _, err := os.Stat(Binary()); err != nil {
		unavailable(t, err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	other := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "Ok") // what the emulator answers on /
	})}
	go other.Serve(l)
	defer other.Close()
	taken := l.Addr().(*net.TCPAddr).Port
	pickFirst(t, taken)
	e, err := startRetrying(context.Background())
	if err != nil {
		t.Fatalf("emulator not started when another answered on its first port: %v", err)
	}
	defer e.Stop()
	if e.Host == fmt.Sprintf("127.0.0.1:%d", taken) {
		t.Fatalf("start adopted the other server on %s as its emulator", e.Host)
	}
}

// pickFirst makes the emulator's first pick port and later picks free
// ports; it returns the number of picks so far.
func pickFirst(t *testing.T, port int) *int {
	picks := new(int)
	pickPort = func() (int, error) {
		*picks++
		if *picks == 1 {
			return port, nil
		}
		return freePort()
	}
	t.Cleanup(func() { pickPort = freePort })
	return picks
}
