package pair

import (
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types/events"
)

// holdHistory keeps `wactl pair` from acknowledging the history syncs the
// phone sends right after pairing: the pairing client has nowhere durable
// to put them and disconnects moments later, so an acknowledged one would
// be lost. With ManualHistorySyncDownload whatsmeow only hands them to the
// handlers, and a handler answering false withholds the message receipt;
// WhatsApp then delivers them again to the next client of this device —
// the daemon, which queues them durably (pkg/histq).
func holdHistory(cli *whatsmeow.Client) {
	cli.ManualHistorySyncDownload = true
	cli.AddEventHandlerWithSuccessStatus(func(evt any) bool {
		m, ok := evt.(*events.Message)
		if !ok || !m.Info.IsFromMe {
			return true
		}
		return m.Message.GetProtocolMessage().GetHistorySyncNotification() == nil
	})
}
