package daemon

import (
	"fmt"
	"log/slog"

	sd "github.com/coreos/go-systemd/v22/daemon"
)

// Notifier talks to systemd (sd_notify). Outside systemd NOTIFY_SOCKET is
// unset and every call is a harmless no-op.
type Notifier interface {
	Notify(state string)
}

// SystemdNotifier is the real one.
type SystemdNotifier struct{ Log *slog.Logger }

func (n SystemdNotifier) Notify(state string) {
	if _, err := sd.SdNotify(false, state); err != nil && n.Log != nil {
		n.Log.Warn("sd_notify failed", "state", state, "err", err)
	}
}

// statusLine is the STATUS= text `systemctl status` shows.
func statusLine(s Status) string {
	sum := s.Summary()
	lease := "lease held"
	switch s.LockStatus {
	case "held_by_other":
		lease = "PASSIVE, lease held by " + s.LockHolder
	case "not_held", "unknown", "":
		lease = "PASSIVE, lease not held"
	}
	line := fmt.Sprintf("%d/%d connected, %s", sum.Connected, sum.Total, lease)
	if sum.NeedsQR > 0 {
		line += fmt.Sprintf(", %d need a QR", sum.NeedsQR)
	}
	if s.JournalBacklog > 0 {
		line += fmt.Sprintf(", %d messages waiting for Firestore", s.JournalBacklog)
	}
	return line
}
