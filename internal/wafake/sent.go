package wafake

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"go.mau.fi/libsignal/protocol"
	"go.mau.fi/libsignal/session"
	"google.golang.org/protobuf/proto"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
)

// SentMessage is one <message> stanza a client sent through the fake.
type SentMessage struct {
	// From is the sending companion device.
	From types.JID
	// To is the chat the client addressed.
	To types.JID
	ID string
	At time.Time
	// Recipients are the devices the client encrypted for.
	Recipients []types.JID
	// Message is the decrypted content when one recipient was a fake peer
	// (or for plaintext newsletter sends); nil otherwise.
	Message *waE2E.Message
	// DecryptError explains why Message is nil although a peer was a recipient.
	DecryptError string
}

// Sent returns every message stanza clients sent, oldest first. A client
// retrying the same request shows up as several entries with the same ID.
func (s *Server) Sent() []SentMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SentMessage(nil), s.sent...)
}

// SentByID returns the sends with the given message ID.
func (s *Server) SentByID(id string) []SentMessage {
	var out []SentMessage
	for _, m := range s.Sent() {
		if m.ID == id {
			out = append(out, m)
		}
	}
	return out
}

// WaitSent blocks until at least n messages were sent by clients and
// returns them all.
func (s *Server) WaitSent(ctx context.Context, n int) ([]SentMessage, error) {
	if err := s.waitFor(ctx, func() bool { return len(s.sent) >= n }); err != nil {
		return s.Sent(), fmt.Errorf("wafake: waiting for %d sent messages: %w", n, err)
	}
	return s.Sent(), nil
}

func (c *conn) handleClientMessage(ctx context.Context, node *waBinary.Node) {
	s := c.srv
	ag := node.AttrGetter()
	to := ag.JID("to")
	id := ag.String("id")
	me := c.device()
	rec := SentMessage{From: me, To: to, ID: id, At: time.Now()}
	if pt, ok := node.GetOptionalChildByTag("plaintext"); ok {
		if b, ok := pt.Content.([]byte); ok {
			var m waE2E.Message
			if err := proto.Unmarshal(b, &m); err == nil {
				rec.Message = &m
			}
		}
	}
	participants := node.GetChildByTag("participants")
	for _, part := range participants.GetChildren() {
		rj, ok := part.Attrs["jid"].(types.JID)
		if !ok {
			continue
		}
		rec.Recipients = append(rec.Recipients, rj)
		s.mu.Lock()
		p := s.peers[rj]
		s.mu.Unlock()
		if p == nil || rec.Message != nil {
			continue
		}
		enc := part.GetChildByTag("enc")
		m, err := p.decrypt(ctx, me, enc)
		if err != nil {
			rec.DecryptError = err.Error()
			continue
		}
		rec.Message, rec.DecryptError = m, ""
	}
	if rec.Message == nil {
		s.decryptPeerMessage(ctx, me, node, &rec) // history.go
	}
	s.mu.Lock()
	s.sent = append(s.sent, rec)
	s.notifyLocked()
	s.mu.Unlock()
	_ = c.send(waBinary.Node{Tag: "ack", Attrs: waBinary.Attrs{
		"class": "message", "id": id, "from": to, "t": strconv.FormatInt(time.Now().Unix(), 10),
	}})
}

func (p *peer) decrypt(ctx context.Context, from types.JID, enc waBinary.Node) (*waE2E.Message, error) {
	p.sig.Lock()
	defer p.sig.Unlock()
	ct, _ := enc.Content.([]byte)
	typ, _ := enc.Attrs["type"].(string)
	addr := from.SignalAddress()
	cipher := session.NewCipher(session.NewBuilderFromSignal(p.store, addr, serializer), addr)
	var plain []byte
	var err error
	switch typ {
	case "pkmsg":
		var msg *protocol.PreKeySignalMessage
		if msg, err = protocol.NewPreKeySignalMessageFromBytes(ct, serializer.PreKeySignalMessage, serializer.SignalMessage); err == nil {
			plain, err = cipher.DecryptMessage(ctx, msg)
		}
	case "msg":
		var msg *protocol.SignalMessage
		if msg, err = protocol.NewSignalMessageFromBytes(ct, serializer.SignalMessage); err == nil {
			plain, err = cipher.Decrypt(ctx, msg)
		}
	default:
		err = fmt.Errorf("unsupported enc type %q", typ)
	}
	if err != nil {
		return nil, fmt.Errorf("wafake: peer %s decrypting from %s: %w", p.jid, from, err)
	}
	if plain, err = unpad(plain); err != nil {
		return nil, err
	}
	var m waE2E.Message
	if err = proto.Unmarshal(plain, &m); err != nil {
		return nil, err
	}
	return &m, nil
}
