package wafake

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.mau.fi/libsignal/ecc"
	"go.mau.fi/libsignal/groups"
	"go.mau.fi/libsignal/keys/identity"
	"go.mau.fi/libsignal/keys/prekey"
	"go.mau.fi/libsignal/protocol"
	"go.mau.fi/libsignal/session"
	"go.mau.fi/libsignal/util/optional"
	"google.golang.org/protobuf/proto"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
)

// peer is a fake WhatsApp user device that can encrypt to and decrypt from
// companion devices, with its own in-memory Signal store.
type peer struct {
	jid   types.JID
	store *signalStore
	// sig serialises this peer's Signal operations. Each one reads a
	// session record, advances it and stores it back: two at once (a
	// retry's resend and a new message to the same device) gave two
	// messages the same counter, and the companion dropped the second as
	// "received message with old counter" (seen in CI, on the retry path
	// of TestBackupFailoverToEmptyHost).
	sig sync.Mutex
	// groups whose sender key was already distributed, per recipient device
	skdmSent map[string]bool
}

// ErrNoKeys means the target device has not uploaded its prekeys yet: wait
// for events.Connected on the client before sending to it.
var ErrNoKeys = errors.New("wafake: device has not uploaded prekeys yet (wait for events.Connected)")

// ErrNoDevice means no companion device of that number is known to the fake.
var ErrNoDevice = errors.New("wafake: no such device on the fake server")

// MessageOptions adjust a message injected by the fake.
type MessageOptions struct {
	// ID of the message; default a fresh random ID. Reusing an ID is how a
	// test makes WhatsApp repeat a message.
	ID string
	// Timestamp default now.
	Timestamp time.Time
	// PushName is the sender's display name (notify attribute).
	PushName string
}

// NewMessageID returns an ID in the style of WhatsApp message IDs.
func NewMessageID() string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	return "3EB0" + strings.ToUpper(hex.EncodeToString(b))
}

func (o MessageOptions) fill() MessageOptions {
	if o.ID == "" {
		o.ID = NewMessageID()
	}
	if o.Timestamp.IsZero() {
		o.Timestamp = time.Now()
	}
	return o
}

// Peer returns the fake user with the given phone number, creating it. Its
// device 0 is the only device it has.
func (s *Server) peer(jid types.JID) *peer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peerLocked(jid)
}

func (s *Server) peerLocked(jid types.JID) *peer {
	jid = jid.ToNonAD()
	p := s.peers[jid]
	if p == nil {
		p = &peer{jid: jid, store: newSignalStore(nil)}
		s.peers[jid] = p
	}
	return p
}

// targets lists the companion devices a message to `to` goes to.
func (s *Server) targetsLocked(to types.JID) ([]*device, error) {
	if to.Device != 0 {
		d := s.devices[to]
		if d == nil || d.removed {
			return nil, fmt.Errorf("%w: %s", ErrNoDevice, to)
		}
		return []*device{d}, nil
	}
	var out []*device
	for j, d := range s.devices {
		if j.User == to.User && !d.removed {
			out = append(out, d)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNoDevice, to)
	}
	return out, nil
}

// encryptFor encrypts plaintext from peer p to companion device d,
// establishing a session from d's uploaded prekeys on first use.
func (s *Server) encryptFor(ctx context.Context, p *peer, d *device, plaintext []byte) (encType string, ct []byte, err error) {
	p.sig.Lock()
	defer p.sig.Unlock()
	addr := d.jid.SignalAddress()
	builder := session.NewBuilderFromSignal(p.store, addr, serializer)
	has, _ := p.store.ContainsSession(ctx, addr)
	if !has {
		s.mu.Lock()
		if d.skey == nil || d.identity == nil {
			s.mu.Unlock()
			return "", nil, fmt.Errorf("%w: %s", ErrNoKeys, d.jid)
		}
		var pk = optional.NewEmptyUint32()
		var pkPub ecc.ECPublicKeyable
		if len(d.prekeys) > 0 {
			k := d.prekeys[0]
			d.prekeys = d.prekeys[1:]
			pk = optional.NewOptionalUint32(k.KeyID)
			pkPub = ecc.NewDjbECPublicKey(*k.Pub)
		}
		bundle := prekey.NewBundle(d.regID, uint32(d.jid.Device), pk, d.skey.KeyID, pkPub,
			ecc.NewDjbECPublicKey(*d.skey.Pub), *d.skey.Signature,
			identity.NewKey(ecc.NewDjbECPublicKey([32]byte(d.identity))))
		s.mu.Unlock()
		if err = builder.ProcessBundle(ctx, bundle); err != nil {
			return "", nil, fmt.Errorf("wafake: building session %s -> %s: %w", p.jid, d.jid, err)
		}
	}
	msg, err := session.NewCipher(builder, addr).Encrypt(ctx, pad(plaintext))
	if err != nil {
		return "", nil, err
	}
	if msg.Type() == protocol.PREKEY_TYPE {
		return "pkmsg", msg.Serialize(), nil
	}
	return "msg", msg.Serialize(), nil
}

// pad applies WhatsApp's random 1-15 byte padding, which the client strips.
func pad(b []byte) []byte {
	var n [1]byte
	_, _ = rand.Read(n[:])
	p := n[0]&0x0f | 1
	out := append([]byte{}, b...)
	for range int(p) {
		out = append(out, p)
	}
	return out
}

func unpad(b []byte) ([]byte, error) {
	if len(b) == 0 || int(b[len(b)-1]) > len(b) {
		return nil, errors.New("bad padding")
	}
	return b[:len(b)-int(b[len(b)-1])], nil
}

// SendFromPeer delivers a Signal-encrypted direct message from the fake user
// `from` (a phone-number JID) to every companion device of `to` (or only to
// the given device when to has a device part). It returns the message ID.
// The message stays queued, and is sent again at each login, until the client
// acknowledges it with a receipt — which whatsmeow withholds when an event
// handler registered with AddEventHandlerWithSuccessStatus returns false.
func (s *Server) SendFromPeer(ctx context.Context, from, to types.JID, msg *waE2E.Message, opts ...MessageOptions) (string, error) {
	o := firstOpt(opts).fill()
	plaintext, err := proto.Marshal(msg)
	if err != nil {
		return "", err
	}
	p := s.peer(from)
	return o.ID, s.sendEncrypted(ctx, p, to, plaintext, o, nil)
}

func firstOpt(opts []MessageOptions) MessageOptions {
	if len(opts) > 0 {
		return opts[0]
	}
	return MessageOptions{}
}

func (s *Server) sendEncrypted(ctx context.Context, p *peer, to types.JID, plaintext []byte, o MessageOptions, extra waBinary.Attrs) error {
	s.mu.Lock()
	targets, err := s.targetsLocked(to)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	for _, d := range targets {
		encType, ct, err := s.encryptFor(ctx, p, d, plaintext)
		if err != nil {
			return err
		}
		attrs := waBinary.Attrs{
			"id":   o.ID,
			"from": p.jid,
			"t":    strconv.FormatInt(o.Timestamp.Unix(), 10),
			"type": "text",
		}
		if o.PushName != "" {
			attrs["notify"] = o.PushName
		}
		for k, v := range extra {
			attrs[k] = v
		}
		s.rememberForRetry(p, d.jid, o.ID, plaintext, attrs) // retry.go
		s.enqueue(d.jid, o.ID, waBinary.Node{Tag: "message", Attrs: attrs, Content: []waBinary.Node{
			{Tag: "enc", Attrs: waBinary.Attrs{"v": "2", "type": encType}, Content: ct},
		}})
	}
	return nil
}

// SendGroupFromPeer delivers a group message from fake user `from` in group
// `group` (a @g.us JID) to the companion devices of `to`. The first message
// of a sender in a group also carries the sender key distribution, in a
// pkmsg/msg part that whatsmeow reports as its own events.Message without
// text, as WhatsApp does.
func (s *Server) SendGroupFromPeer(ctx context.Context, group, from, to types.JID, msg *waE2E.Message, opts ...MessageOptions) (string, error) {
	o := firstOpt(opts).fill()
	p := s.peer(from)
	plaintext, err := proto.Marshal(msg)
	if err != nil {
		return "", err
	}
	name := protocol.NewSenderKeyName(group.String(), p.jid.SignalAddress())
	p.sig.Lock()
	builder := groups.NewGroupSessionBuilder(p.store, serializer)
	skdm, err := builder.Create(ctx, name)
	if err != nil {
		p.sig.Unlock()
		return "", err
	}
	gct, err := groups.NewGroupCipher(builder, name, p.store).Encrypt(ctx, pad(plaintext))
	p.sig.Unlock()
	if err != nil {
		return "", err
	}
	skdmPlain, err := proto.Marshal(&waE2E.Message{SenderKeyDistributionMessage: &waE2E.SenderKeyDistributionMessage{
		GroupID: proto.String(group.String()), AxolotlSenderKeyDistributionMessage: skdm.Serialize(),
	}})
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	targets, err := s.targetsLocked(to)
	s.mu.Unlock()
	if err != nil {
		return "", err
	}
	for _, d := range targets {
		var content []waBinary.Node
		key := group.String() + "|" + d.jid.String()
		s.mu.Lock()
		if p.skdmSent == nil {
			p.skdmSent = map[string]bool{}
		}
		needSKDM := !p.skdmSent[key]
		s.mu.Unlock()
		if needSKDM {
			encType, ct, err := s.encryptFor(ctx, p, d, skdmPlain)
			if err != nil {
				return "", err
			}
			content = append(content, waBinary.Node{Tag: "enc", Attrs: waBinary.Attrs{"v": "2", "type": encType}, Content: ct})
			s.mu.Lock()
			p.skdmSent[key] = true
			s.mu.Unlock()
		}
		content = append(content, waBinary.Node{Tag: "enc", Attrs: waBinary.Attrs{"v": "2", "type": "skmsg"}, Content: gct.SignedSerialize()})
		attrs := waBinary.Attrs{
			"id": o.ID, "from": group, "participant": p.jid,
			"t": strconv.FormatInt(o.Timestamp.Unix(), 10), "type": "text",
		}
		if o.PushName != "" {
			attrs["notify"] = o.PushName
		}
		s.enqueue(d.jid, o.ID, waBinary.Node{Tag: "message", Attrs: attrs, Content: content})
	}
	return o.ID, nil
}

// SendNewsletter delivers a plaintext channel (newsletter) message from
// `newsletter` (a @newsletter JID) to the companion devices of `to`.
func (s *Server) SendNewsletter(newsletter, to types.JID, msg *waE2E.Message, opts ...MessageOptions) (string, error) {
	o := firstOpt(opts).fill()
	plaintext, err := proto.Marshal(msg)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	targets, err := s.targetsLocked(to)
	if err == nil {
		s.nextMsg++
	}
	serverID := 100 + s.nextMsg
	s.mu.Unlock()
	if err != nil {
		return "", err
	}
	for _, d := range targets {
		s.enqueue(d.jid, o.ID, waBinary.Node{Tag: "message", Attrs: waBinary.Attrs{
			"id": o.ID, "from": newsletter, "t": strconv.FormatInt(o.Timestamp.Unix(), 10),
			"type": "text", "server_id": strconv.Itoa(serverID),
		}, Content: []waBinary.Node{{Tag: "plaintext", Content: plaintext}}})
	}
	return o.ID, nil
}
