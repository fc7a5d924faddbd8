package daemon

import "go.mau.fi/whatsmeow"

// disconnect closes a client's socket. Every disconnect wactl makes goes
// through here.
func disconnect(cli *whatsmeow.Client) {
	cli.Disconnect()
}
