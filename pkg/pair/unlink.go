package pair

import (
	"context"
	"errors"
	"fmt"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types/events"
)

// Unlink logs a paired device out — WhatsApp drops it from the phone's
// linked devices — and whatsmeow deletes it from the store. It is the first
// half of a confirmed re-pair (--force): afterwards the caller takes a fresh
// device from the container (Container.NewDevice) and calls Pair with a new
// client. It connects the client if needed and leaves it disconnected. A
// device the server already logged out is deleted the same way.
func Unlink(ctx context.Context, client *whatsmeow.Client) error {
	return UnlinkWith(ctx, client, Driver{})
}

// UnlinkWith is Unlink with the connection opened and closed by d (the
// daemon's connect gate: a PASSIVE daemon must not log in, let alone log
// out, a device another instance may be driving).
func UnlinkWith(ctx context.Context, client *whatsmeow.Client, d Driver) error {
	if client == nil || client.Store == nil {
		return errors.New("unlink: no client or device store")
	}
	if client.Store.ID == nil {
		return nil
	}
	if !client.IsConnected() || !client.IsLoggedIn() {
		ready := make(chan any, 1)
		h := client.AddEventHandler(func(evt any) {
			switch evt.(type) {
			case *events.Connected, *events.LoggedOut:
				select {
				case ready <- evt:
				default:
				}
			}
		})
		defer client.RemoveEventHandler(h)
		if !client.IsConnected() {
			if err := d.connect(ctx, client); err != nil {
				d.disconnect(client)
				return fmt.Errorf("connect to unlink: %w", err)
			}
		}
		select {
		case evt := <-ready:
			if _, out := evt.(*events.LoggedOut); out {
				// Already removed on the server; whatsmeow has deleted the
				// device from the store by itself.
				d.disconnect(client)
				return nil
			}
		case <-ctx.Done():
			d.disconnect(client)
			return fmt.Errorf("unlink: waiting for login: %w", ctx.Err())
		}
	}
	if err := client.Logout(ctx); err != nil {
		d.disconnect(client)
		return fmt.Errorf("unlink: %w", err)
	}
	return nil
}
