package wafake

import (
	"context"
	"encoding/binary"
	"maps"
	"strconv"
	"sync"
	"sync/atomic"

	"go.mau.fi/libsignal/ecc"
	"go.mau.fi/libsignal/keys/identity"
	"go.mau.fi/libsignal/keys/prekey"
	"go.mau.fi/libsignal/protocol"
	"go.mau.fi/libsignal/session"
	"go.mau.fi/libsignal/util/optional"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// The sender's part of WhatsApp's retry protocol, for peer direct
// messages. When a companion cannot decrypt a message it sends
// <receipt type="retry"> with a retry count; from the second retry on it
// includes a fresh prekey bundle (<keys>). The fake peer then does what
// whatsmeow's own handleRetryReceipt does as a sender: without keys it
// encrypts the message again on its current session; with keys it builds a
// new Signal session from the bundle and sends the message as a prekey
// message, with the same id and the retry count on <enc>. This is how a
// stale Signal session (a companion restored from an old backup) recovers.

type retryKey struct {
	srv *Server
	dev types.JID
	id  string
}

type retrySource struct {
	peer      *peer
	plaintext []byte
	attrs     waBinary.Attrs
}

// retrySources holds what each peer message was, to send it again; kept
// out of Server so the retry support stays in this file.
var retrySources sync.Map // retryKey → retrySource

func (s *Server) rememberForRetry(p *peer, dev types.JID, id string, plaintext []byte, attrs waBinary.Attrs) {
	retrySources.Store(retryKey{s, dev, id}, retrySource{peer: p, plaintext: plaintext, attrs: maps.Clone(attrs)})
}

var (
	retriesAnswered sync.Map // *Server → *atomic.Int64
	retriesIgnored  sync.Map // *Server → bool
)

// IgnoreRetryReceipts makes the fake's peers ignore retry receipts, as a
// sender that is offline or gave up does.
func (s *Server) IgnoreRetryReceipts(on bool) { retriesIgnored.Store(s, on) }

// RetriesAnswered counts the messages the fake sent again in answer to
// retry receipts.
func (s *Server) RetriesAnswered() int {
	if n, ok := retriesAnswered.Load(s); ok {
		return int(n.(*atomic.Int64).Load())
	}
	return 0
}

func (s *Server) answerRetry(ctx context.Context, dev types.JID, node *waBinary.Node) {
	if ign, _ := retriesIgnored.Load(s); ign == true {
		return
	}
	retry, ok := node.GetOptionalChildByTag("retry")
	if !ok {
		return
	}
	id, _ := retry.Attrs["id"].(string)
	v, ok := retrySources.Load(retryKey{s, dev, id})
	if !ok {
		return
	}
	src := v.(retrySource)
	p := src.peer
	p.sig.Lock()
	defer p.sig.Unlock()
	addr := dev.SignalAddress()
	builder := session.NewBuilderFromSignal(p.store, addr, serializer)
	if keys, ok := node.GetOptionalChildByTag("keys"); ok {
		reg, _ := node.GetChildByTag("registration").Content.([]byte)
		ident, _ := keys.GetChildByTag("identity").Content.([]byte)
		pk := parseKeyNode(keys.GetChildByTag("key"))
		spk := parseKeyNode(keys.GetChildByTag("skey"))
		if len(reg) != 4 || len(ident) != 32 || pk == nil || spk == nil || spk.Signature == nil {
			s.log.Warn("retry receipt with an unusable bundle", "device", dev, "id", id)
			return
		}
		bundle := prekey.NewBundle(binary.BigEndian.Uint32(reg), uint32(dev.Device),
			optional.NewOptionalUint32(pk.KeyID), spk.KeyID, ecc.NewDjbECPublicKey(*pk.Pub),
			ecc.NewDjbECPublicKey(*spk.Pub), *spk.Signature,
			identity.NewKey(ecc.NewDjbECPublicKey([32]byte(ident))))
		if err := builder.ProcessBundle(ctx, bundle); err != nil {
			s.log.Warn("retry receipt: building a new session failed", "device", dev, "id", id, "err", err)
			return
		}
	}
	msg, err := session.NewCipher(builder, addr).Encrypt(ctx, pad(src.plaintext))
	if err != nil {
		s.log.Warn("retry receipt: encrypting again failed", "device", dev, "id", id, "err", err)
		return
	}
	encType := "msg"
	if msg.Type() == protocol.PREKEY_TYPE {
		encType = "pkmsg"
	}
	count := 1
	if c, err := strconv.Atoi(attrString(retry.Attrs["count"])); err == nil {
		count = c
	}
	n, _ := retriesAnswered.LoadOrStore(s, new(atomic.Int64))
	n.(*atomic.Int64).Add(1)
	s.enqueue(dev, id, waBinary.Node{Tag: "message", Attrs: maps.Clone(src.attrs), Content: []waBinary.Node{
		{Tag: "enc", Attrs: waBinary.Attrs{"v": "2", "type": encType, "count": strconv.Itoa(count)}, Content: msg.Serialize()},
	}})
}

func attrString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case int:
		return strconv.Itoa(v)
	}
	return ""
}
