package daemon

import (
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types/events"
)

// handleOf is the event handler of one client. Events of a client that is
// no longer the account's (stopped, stepped down, replaced) do not touch
// the account; a message among them is refused (false): whatsmeow then
// neither acknowledges it nor marks it handled in its decrypted-event
// buffer, and the server redelivers it to whichever connection is the
// account's next. Removing the handler instead lost such messages: with no
// handler an event counts as handled, and the redelivery was acknowledged
// without being recorded (the fault-injection run, internal/faulttest).
func (a *account) handleOf(cli *whatsmeow.Client, evt any) bool {
	a.mu.Lock()
	current := a.cli == cli
	a.mu.Unlock()
	if current {
		return a.handle(evt)
	}
	switch evt.(type) {
	case *events.Message, *events.HistorySync, *events.UndecryptableMessage:
		return false
	}
	return true
}
