package wafake

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mau.fi/libsignal/ecc"
	"google.golang.org/protobuf/proto"

	"go.mau.fi/whatsmeow"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"
)

// ErrPairRejected is returned by Scan when the client refused the pairing
// (for example its PrePairCallback said the phone is not the expected one).
var ErrPairRejected = errors.New("wafake: client rejected the pairing")

// ErrUnknownQR is returned by Scan for a code no waiting connection showed.
var ErrUnknownQR = errors.New("wafake: QR code does not match any connection waiting to pair (expired?)")

// Platform reported to the client in pair-success.
const Platform = "android"

func (c *conn) startPairing(ctx context.Context) {
	refs := make([]waBinary.Node, c.srv.opts.QRRefs)
	c.mu.Lock()
	for i := range refs {
		b := make([]byte, 18)
		_, _ = rand.Read(b)
		ref := "2@" + base64.StdEncoding.EncodeToString(b)
		c.refs = append(c.refs, ref)
		refs[i] = waBinary.Node{Tag: "ref", Content: []byte(ref)}
	}
	c.mu.Unlock()
	c.srv.mu.Lock()
	for i := range c.srv.records {
		if c.srv.records[i].ID == c.id {
			c.srv.records[i].Pairing = true
		}
	}
	c.srv.notifyLocked()
	c.srv.mu.Unlock()
	_, _, err := c.request(waBinary.Node{Tag: "iq", Attrs: waBinary.Attrs{"from": types.ServerJID, "type": "set"},
		Content: []waBinary.Node{{Tag: "pair-device", Content: refs}}})
	if err != nil {
		return
	}
	go func() {
		select {
		case <-c.done:
		case <-time.After(c.srv.opts.PairTimeout):
			c.mu.Lock()
			paired := !c.jid.IsEmpty()
			c.mu.Unlock()
			if !paired {
				c.setOutcome("pair timeout")
				_ = c.t.ws.Close(4000, "")
				c.cancel()
			}
		}
	}()
}

// WaitPairing blocks until some connection is showing QR codes.
func (s *Server) WaitPairing(ctx context.Context) error {
	return s.waitFor(ctx, func() bool {
		for _, c := range s.conns {
			c.mu.Lock()
			waiting := len(c.refs) > 0 && c.jid.IsEmpty()
			c.mu.Unlock()
			if waiting {
				return true
			}
		}
		return false
	})
}

// Scan plays the primary phone of `phone` (international digits, no +)
// scanning a QR code the client showed: it links a new companion device and
// answers with a signed pair-success. It returns the new device JID once the
// client confirmed, after which the fake sends stream error 515 and the
// client reconnects and logs in by itself. If the client refuses (its
// PrePairCallback returned false), Scan returns ErrPairRejected.
func (s *Server) Scan(ctx context.Context, qr, phone string) (types.JID, error) {
	parts := strings.Split(qr, ",")
	if len(parts) != 4 {
		return types.EmptyJID, fmt.Errorf("wafake: QR %q does not have 4 comma-separated parts", truncate(qr))
	}
	noise, err1 := base64.StdEncoding.DecodeString(parts[1])
	ident, err2 := base64.StdEncoding.DecodeString(parts[2])
	adv, err3 := base64.StdEncoding.DecodeString(parts[3])
	if err := errors.Join(err1, err2, err3); err != nil || len(ident) != 32 {
		return types.EmptyJID, fmt.Errorf("wafake: QR is not valid base64 key material: %v", err)
	}
	s.mu.Lock()
	var c *conn
	for _, cand := range s.conns {
		cand.mu.Lock()
		for _, r := range cand.refs {
			// An outcome means the connection is already being closed.
			if r == parts[0] && cand.jid.IsEmpty() && cand.outcome == "" {
				c = cand
			}
		}
		cand.mu.Unlock()
	}
	if c == nil || !bytes.Equal(c.t.clientKey, noise) {
		s.mu.Unlock()
		return types.EmptyJID, ErrUnknownQR
	}
	s.mu.Unlock()
	return s.completePairing(ctx, c, phone, ident, adv)
}

// completePairing plays the phone's side once it knows the companion's
// identity key and ADV secret: pair-success, wait for the signed
// confirmation, register the device, stream error 515.
func (s *Server) completePairing(ctx context.Context, c *conn, phone string, ident, adv []byte) (types.JID, error) {
	s.mu.Lock()
	acct := s.accountLocked(phone)
	jid := types.JID{User: phone, Device: acct.nextDevice, Server: types.DefaultUserServer}
	acct.nextDevice++
	lid := acct.lid
	lid.Device = jid.Device
	phoneKey := acct.phoneDev.store.ident
	s.mu.Unlock()

	container, err := signedIdentity(phoneKey, ident, adv, jid.Device)
	if err != nil {
		return types.EmptyJID, err
	}
	_, answer, err := c.request(waBinary.Node{Tag: "iq", Attrs: waBinary.Attrs{"from": types.ServerJID, "type": "set"},
		Content: []waBinary.Node{{Tag: "pair-success", Content: []waBinary.Node{
			{Tag: "device-identity", Content: container},
			{Tag: "platform", Attrs: waBinary.Attrs{"name": Platform}},
			{Tag: "device", Attrs: waBinary.Attrs{"jid": jid, "lid": lid}},
		}}}})
	if err != nil {
		return types.EmptyJID, fmt.Errorf("wafake: sending pair-success: %w", err)
	}
	var resp *waBinary.Node
	select {
	case resp = <-answer:
	case <-ctx.Done():
		return types.EmptyJID, ctx.Err()
	}
	if resp == nil {
		return types.EmptyJID, fmt.Errorf("wafake: connection closed before the client confirmed pairing")
	}
	if t, _ := resp.Attrs["type"].(string); t != "result" {
		return types.EmptyJID, fmt.Errorf("%w: %s", ErrPairRejected, resp.GetChildByTag("error").Attrs["text"])
	}
	reg := registrationFromPayload(c)
	s.mu.Lock()
	s.registerDeviceLocked(jid, c.t.clientKey, reg)
	for i := range s.records {
		if s.records[i].ID == c.id {
			s.records[i].Device = jid
		}
	}
	s.notifyLocked()
	s.mu.Unlock()
	c.mu.Lock()
	c.jid = jid
	c.mu.Unlock()
	c.streamError("515", "")
	return jid, nil
}

func truncate(s string) string {
	if len(s) > 12 {
		return s[:12] + "…"
	}
	return s
}

func registrationFromPayload(c *conn) *registration {
	d := c.t.payload.GetDevicePairingData()
	if d == nil || len(d.GetERegid()) != 4 || len(d.GetEIdent()) != 32 || len(d.GetESkeyVal()) != 32 || len(d.GetESkeySig()) != 64 {
		return nil
	}
	id := d.GetESkeyID()
	sk := &keys.PreKey{KeyID: uint32(id[0])<<16 | uint32(id[1])<<8 | uint32(id[2])}
	sk.Pub = (*[32]byte)(d.GetESkeyVal())
	sk.Signature = (*[64]byte)(d.GetESkeySig())
	return &registration{identity: d.GetEIdent(), regID: binary.BigEndian.Uint32(d.GetERegid()), skey: sk}
}

// signedIdentity builds the ADV container the phone sends in pair-success:
// device details signed by the phone's identity key over the companion's
// identity key, HMAC'd with the ADV secret from the QR code.
func signedIdentity(phoneKey *keys.KeyPair, companionIdent, advSecret []byte, deviceID uint16) ([]byte, error) {
	var raw [4]byte
	_, _ = rand.Read(raw[:])
	details, err := proto.Marshal(&waAdv.ADVDeviceIdentity{
		RawID:       proto.Uint32(binary.BigEndian.Uint32(raw[:])),
		Timestamp:   proto.Uint64(uint64(time.Now().Unix())),
		KeyIndex:    proto.Uint32(uint32(deviceID)),
		AccountType: waAdv.ADVEncryptionType_E2EE.Enum(),
		DeviceType:  waAdv.ADVEncryptionType_E2EE.Enum(),
	})
	if err != nil {
		return nil, err
	}
	msg := append(append(append([]byte{}, whatsmeow.AdvAccountSignaturePrefix...), details...), companionIdent...)
	sig := ecc.CalculateSignature(ecc.NewDjbECPrivateKey(*phoneKey.Priv), msg)
	signed, err := proto.Marshal(&waAdv.ADVSignedDeviceIdentity{
		Details: details, AccountSignatureKey: phoneKey.Pub[:], AccountSignature: sig[:],
	})
	if err != nil {
		return nil, err
	}
	mac := hmac.New(sha256.New, advSecret)
	mac.Write(signed)
	return proto.Marshal(&waAdv.ADVSignedDeviceIdentityHMAC{
		Details: signed, HMAC: mac.Sum(nil), AccountType: waAdv.ADVEncryptionType_E2EE.Enum(),
	})
}
