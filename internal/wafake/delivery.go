package wafake

import (
	"bytes"
	"compress/zlib"
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/types"
)

// Delivery records one message the client acknowledged.
type Delivery struct {
	Device types.JID
	ID     string
	// How is "receipt", "receipt sender", "ack", ... as sent by the client.
	How string
	At  time.Time
}

// Receipt is one <receipt> stanza a client sent (Type "" is a delivery
// receipt; "read", "sender", "hist_sync", "peer_msg", ... as whatsmeow sends
// them).
type Receipt struct {
	Device types.JID
	ID     string
	Type   string
	At     time.Time
}

func (s *Server) logReceipt(r Receipt) {
	s.mu.Lock()
	s.receipts = append(s.receipts, r)
	s.notifyLocked()
	s.mu.Unlock()
}

// Receipts returns every receipt clients sent, oldest first.
func (s *Server) Receipts() []Receipt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Receipt(nil), s.receipts...)
}

// WaitReceipt blocks until the device sent a receipt of type typ for id.
func (s *Server) WaitReceipt(ctx context.Context, dev types.JID, id, typ string) error {
	err := s.waitFor(ctx, func() bool {
		for _, r := range s.receipts {
			if r.Device == dev && r.ID == id && r.Type == typ {
				return true
			}
		}
		return false
	})
	if err != nil {
		return fmt.Errorf("wafake: no %q receipt for %s from %s: %w", typ, id, dev, err)
	}
	return nil
}

// enqueue keeps the node until the device acknowledges it and sends it now
// if the device is logged in.
func (s *Server) enqueue(dev types.JID, id string, node waBinary.Node) {
	s.mu.Lock()
	d := s.devices[dev]
	if d == nil {
		s.mu.Unlock()
		return
	}
	d.pending = append(d.pending, &pendingMsg{id: id, node: node})
	s.sendCount[dev.String()+"|"+id]++
	c := s.live[dev]
	s.notifyLocked()
	s.mu.Unlock()
	if c != nil {
		_ = c.send(node)
	}
}

func (s *Server) markDelivered(dev types.JID, id, how string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.devices[dev]
	if d == nil {
		return
	}
	found := false
	for i, p := range d.pending {
		if p.id == id {
			d.pending = append(d.pending[:i], d.pending[i+1:]...)
			found = true
			break
		}
	}
	if found {
		s.deliveries = append(s.deliveries, Delivery{Device: dev, ID: id, How: how, At: time.Now()})
		s.notifyLocked()
	}
}

// Pending lists the IDs of messages queued for a device and not yet
// acknowledged by it.
func (s *Server) Pending(dev types.JID) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	if d := s.devices[dev]; d != nil {
		for _, p := range d.pending {
			out = append(out, p.id)
		}
	}
	return out
}

// Deliveries returns every acknowledgement received, oldest first.
func (s *Server) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Delivery(nil), s.deliveries...)
}

// Transmissions is how many times the message was written to the device's
// sockets (first delivery plus every redelivery).
func (s *Server) Transmissions(dev types.JID, id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sendCount[dev.String()+"|"+id]
}

// WaitDelivered blocks until the device acknowledged message id.
func (s *Server) WaitDelivered(ctx context.Context, dev types.JID, id string) error {
	err := s.waitFor(ctx, func() bool {
		for _, d := range s.deliveries {
			if d.Device == dev && d.ID == id {
				return true
			}
		}
		return false
	})
	if err != nil {
		return fmt.Errorf("wafake: message %s not acknowledged by %s: %w", id, dev, err)
	}
	return nil
}

// Redeliver sends every unacknowledged message again on the device's live
// connection, as the server does when the client reconnects. It returns how
// many were sent.
func (s *Server) Redeliver(dev types.JID) int {
	s.mu.Lock()
	c := s.live[dev]
	d := s.devices[dev]
	if c == nil || d == nil {
		s.mu.Unlock()
		return 0
	}
	nodes := d.pendingNodes()
	for _, p := range d.pending {
		s.sendCount[dev.String()+"|"+p.id]++
	}
	s.mu.Unlock()
	for _, n := range nodes {
		_ = c.send(n)
	}
	return len(nodes)
}

// SendHistorySync delivers a history sync blob the way the primary phone
// does right after pairing: an encrypted message from the account's own
// phone carrying a protocol message with the zlib-compressed HistorySync
// inline. whatsmeow turns it into events.HistorySync. `to` is the companion
// device (or account) that receives it. If hs.SyncType is unset it is sent
// as INITIAL_BOOTSTRAP.
func (s *Server) SendHistorySync(ctx context.Context, to types.JID, hs *waHistorySync.HistorySync) (string, error) {
	if hs.SyncType == nil {
		hs.SyncType = waHistorySync.HistorySync_INITIAL_BOOTSTRAP.Enum()
	}
	raw, err := proto.Marshal(hs)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	zw := zlib.NewWriter(&buf)
	_, _ = zw.Write(raw)
	if err = zw.Close(); err != nil {
		return "", err
	}
	msg := &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{
		Type: waE2E.ProtocolMessage_HISTORY_SYNC_NOTIFICATION.Enum(),
		HistorySyncNotification: &waE2E.HistorySyncNotification{
			SyncType:                          waE2E.HistorySyncType(hs.GetSyncType()).Enum(),
			ChunkOrder:                        proto.Uint32(hs.GetChunkOrder()),
			Progress:                          proto.Uint32(hs.GetProgress()),
			InitialHistBootstrapInlinePayload: buf.Bytes(),
		},
	}}
	plaintext, err := proto.Marshal(msg)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	phone := s.accountLocked(to.User).phoneDev
	s.mu.Unlock()
	o := MessageOptions{}.fill()
	return o.ID, s.sendEncrypted(ctx, phone, to, plaintext, o, waBinary.Attrs{"category": "peer"})
}
