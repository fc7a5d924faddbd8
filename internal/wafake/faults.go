package wafake

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// Fault is a failure the fake can inflict on a device.
type Fault int

const (
	// FaultDrop closes the device's socket without a goodbye, like a network
	// failure. whatsmeow emits Disconnected and reconnects by itself.
	FaultDrop Fault = iota + 1
	// FaultStreamReplaced sends <stream:error><conflict type="replaced"/>,
	// as when another client connected with the same session. whatsmeow
	// emits StreamReplaced and does not reconnect.
	FaultStreamReplaced
	// FaultLogout removes the device, as when the user unlinks it on the
	// phone: a live connection gets stream error 401 device_removed, every
	// later login gets <failure reason="401"/>. whatsmeow emits LoggedOut and
	// deletes the device from its store.
	FaultLogout
	// FaultTempBan answers the live connection, and every later login until
	// ClearFaults, with <failure reason="402"/> (TemporaryBan, 1 hour).
	FaultTempBan
	// FaultClientOutdated answers the live connection, and every later login
	// until ClearFaults, with <failure reason="405"/> (ClientOutdated).
	FaultClientOutdated
	// FaultStall makes the live connection stop answering anything (pings
	// included) while the socket stays open; whatsmeow then reports
	// KeepAliveTimeout and eventually forces a reconnect. The next
	// connection works normally.
	FaultStall
)

func (f Fault) String() string {
	switch f {
	case FaultDrop:
		return "drop"
	case FaultStreamReplaced:
		return "stream replaced"
	case FaultLogout:
		return "logout"
	case FaultTempBan:
		return "temporary ban"
	case FaultClientOutdated:
		return "client outdated"
	case FaultStall:
		return "stall"
	}
	return "fault(" + strconv.Itoa(int(f)) + ")"
}

// ErrNotConnected means the fault needs a live connection of the device.
var ErrNotConnected = errors.New("wafake: device has no logged-in connection")

// Inject inflicts fault f on device jid (a full device JID such as
// 15551234567:1@s.whatsapp.net).
func (s *Server) Inject(jid types.JID, f Fault) error {
	s.mu.Lock()
	c := s.live[jid]
	d := s.devices[jid]
	switch f {
	case FaultLogout:
		if d == nil {
			s.mu.Unlock()
			return fmt.Errorf("%w: %s", ErrNoDevice, jid)
		}
		d.removed = true
	case FaultTempBan:
		if d == nil {
			s.mu.Unlock()
			return fmt.Errorf("%w: %s", ErrNoDevice, jid)
		}
		d.banned, d.banExpire = true, time.Hour
	case FaultClientOutdated:
		if d == nil {
			s.mu.Unlock()
			return fmt.Errorf("%w: %s", ErrNoDevice, jid)
		}
		d.outdated = true
	}
	if c != nil && f != FaultStall && f != FaultDrop {
		// The connection is finished for the fake as soon as the fault is in
		// force, even if the socket lingers for the close grace period.
		delete(s.live, jid)
	}
	s.notifyLocked()
	s.mu.Unlock()
	if c == nil {
		switch f {
		case FaultDrop, FaultStreamReplaced, FaultStall:
			return fmt.Errorf("%w: %s (%s)", ErrNotConnected, jid, f)
		}
		return nil
	}
	switch f {
	case FaultDrop:
		c.drop()
	case FaultStreamReplaced:
		c.streamError("", "replaced")
	case FaultLogout:
		c.streamError("401", "device_removed")
	case FaultTempBan:
		c.failure(402, waBinary.Attrs{"code": "101", "expire": "3600"})
	case FaultClientOutdated:
		c.failure(405, nil)
	case FaultStall:
		c.stalled.Store(true)
		c.setOutcome("stalled")
	default:
		return fmt.Errorf("wafake: unknown fault %d", int(f))
	}
	return nil
}

// ClearFaults lifts a ban or outdated-client fault on the device. A logout
// cannot be undone: pair again.
func (s *Server) ClearFaults(jid types.JID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.devices[jid]; d != nil {
		d.banned, d.outdated = false, false
	}
}

// IsRemoved reports whether the device was logged out (by FaultLogout or by
// the client's own Logout).
func (s *Server) IsRemoved(jid types.JID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.devices[jid]
	return d != nil && d.removed
}

// removeDevice handles the client's own Logout (remove-companion-device).
func (s *Server) removeDevice(jid types.JID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.devices[jid]; d != nil {
		d.removed = true
	}
	s.notifyLocked()
}
