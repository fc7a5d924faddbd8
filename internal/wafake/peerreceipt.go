package wafake

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// Receipt types a fake peer can send with SendReceipt, as whatsmeow names
// them in types.ReceiptType.
const (
	ReceiptDelivered = ""
	ReceiptRead      = "read"
	ReceiptPlayed    = "played"
)

// SendReceipt delivers a receipt from the fake user `from` (a phone-number
// JID) for messages the client sent to it, to every companion device of
// `to` (or only to that device when to has a device part). typ is
// ReceiptDelivered (""), ReceiptRead or ReceiptPlayed. whatsmeow reports it
// as one events.Receipt with MessageIDs == ids, Chat and Sender == from.
//
// The node has WhatsApp's shape: the first id in the id attribute and the
// others as <list><item id=…/></list>. Like a message, the receipt stays
// queued and is sent again at each login until the client acknowledges it
// (<ack class="receipt">); WaitReceiptAcked waits for that.
func (s *Server) SendReceipt(ctx context.Context, from, to types.JID, ids []string, typ string) error {
	if len(ids) == 0 {
		return errors.New("wafake: SendReceipt needs at least one message id")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	attrs := waBinary.Attrs{
		"id":   ids[0],
		"from": from.ToNonAD(),
		"t":    strconv.FormatInt(time.Now().Unix(), 10),
	}
	if typ != ReceiptDelivered {
		attrs["type"] = typ
	}
	node := waBinary.Node{Tag: "receipt", Attrs: attrs}
	if len(ids) > 1 {
		items := make([]waBinary.Node, 0, len(ids)-1)
		for _, id := range ids[1:] {
			items = append(items, waBinary.Node{Tag: "item", Attrs: waBinary.Attrs{"id": id}})
		}
		node.Content = []waBinary.Node{{Tag: "list", Content: items}}
	}
	s.mu.Lock()
	targets, err := s.targetsLocked(to)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	for _, d := range targets {
		s.enqueue(d.jid, receiptKey(ids[0], typ), node)
	}
	return nil
}

// receiptKey names a queued receipt among a device's pending nodes, apart
// from a message with the same id (a receipt carries the id of the message
// it is about).
func receiptKey(id, typ string) string {
	if typ == "" {
		typ = "delivery"
	}
	return "receipt/" + typ + "/" + id
}

// WaitReceiptAcked blocks until device dev acknowledged the receipt of type
// typ whose first id is id, sent with SendReceipt.
func (s *Server) WaitReceiptAcked(ctx context.Context, dev types.JID, id, typ string) error {
	if err := s.WaitDelivered(ctx, dev, receiptKey(id, typ)); err != nil {
		return fmt.Errorf("wafake: %q receipt for %s not acknowledged by %s: %w", typ, id, dev, err)
	}
	return nil
}
