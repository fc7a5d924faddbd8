package wafake

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/crypto/curve25519"
	"golang.org/x/crypto/hkdf"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"
)

// ErrWrongPairCode is returned by EnterPairCode when the code typed on the
// fake phone is not the one the client displayed.
var ErrWrongPairCode = errors.New("wafake: pairing code does not match")

// ErrNoPairCode means no connection asked for a pairing code for that phone.
var ErrNoPairCode = errors.New("wafake: no client is waiting for a pairing code for this phone")

// linkCode is a client's pending PairPhone request.
type linkCode struct {
	phone   string
	ref     string
	wrapped []byte              // salt | iv | AES-CTR(companion ephemeral pub)
	finish  chan *waBinary.Node // the client's companion_finish IQ
}

func (c *conn) handleLinkCode(iq *waBinary.Node, reg *waBinary.Node) {
	stage, _ := reg.Attrs["stage"].(string)
	switch stage {
	case "companion_hello":
		jid, _ := reg.Attrs["jid"].(types.JID)
		wrapped, _ := reg.GetChildByTag("link_code_pairing_wrapped_companion_ephemeral_pub").Content.([]byte)
		if len(wrapped) != 80 || jid.User == "" {
			c.iqError(iq, 400, "bad-request")
			return
		}
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		ref := fmt.Sprintf("%x", b)
		c.mu.Lock()
		c.link = &linkCode{phone: jid.User, ref: ref, wrapped: wrapped, finish: make(chan *waBinary.Node, 1)}
		c.mu.Unlock()
		c.srv.notify()
		c.result(iq, waBinary.Node{Tag: "link_code_companion_reg", Content: []waBinary.Node{
			{Tag: "link_code_pairing_ref", Content: []byte(ref)},
		}})
	case "companion_finish":
		c.mu.Lock()
		l := c.link
		c.mu.Unlock()
		if l == nil {
			c.iqError(iq, 404, "item-not-found")
			return
		}
		select {
		case l.finish <- iq:
		default:
			c.iqError(iq, 409, "conflict")
		}
	default:
		c.iqError(iq, 400, "bad-request")
	}
}

// linkCipher is AES-CTR keyed by PBKDF2 of the pairing code, which wraps
// both sides' ephemeral keys.
func linkCipher(code string, salt, iv, data []byte) ([]byte, error) {
	key, err := pbkdf2.Key(sha256.New, code, salt, 2<<16, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, len(data))
	cipher.NewCTR(block, iv).XORKeyStream(out, data)
	return out, nil
}

func hkdfSHA256(secret, salt []byte, info string) []byte {
	out := make([]byte, 32)
	_, _ = io.ReadFull(hkdf.New(sha256.New, secret, salt, []byte(info)), out)
	return out
}

// WaitPairCode blocks until a client asked for a pairing code for phone.
func (s *Server) WaitPairCode(ctx context.Context, phone string) error {
	return s.waitFor(ctx, func() bool { return s.linkConnLocked(phone) != nil })
}

func (s *Server) linkConnLocked(phone string) *conn {
	for _, c := range s.conns {
		c.mu.Lock()
		ok := c.link != nil && c.link.phone == phone && c.jid.IsEmpty()
		c.mu.Unlock()
		if ok {
			return c
		}
	}
	return nil
}

// EnterPairCode plays the user typing the code the client showed
// (PairPhone's result, with or without the dash) on the phone `phone`. It
// runs the phone's side of the code exchange and then the same pair-success /
// 515 sequence as Scan, returning the new device JID. A code other than the
// displayed one fails with ErrWrongPairCode, as on a real phone.
func (s *Server) EnterPairCode(ctx context.Context, phone, code string) (types.JID, error) {
	code = strings.ToUpper(strings.ReplaceAll(code, "-", ""))
	s.mu.Lock()
	c := s.linkConnLocked(phone)
	var phoneKey *keys.KeyPair
	if c != nil {
		phoneKey = s.accountLocked(phone).phoneDev.store.ident
	}
	s.mu.Unlock()
	if c == nil {
		return types.EmptyJID, ErrNoPairCode
	}
	c.mu.Lock()
	l := c.link
	c.mu.Unlock()

	companionEph, err := linkCipher(code, l.wrapped[:32], l.wrapped[32:48], l.wrapped[48:80])
	if err != nil {
		return types.EmptyJID, err
	}
	primaryEph := keys.NewKeyPair()
	salt, iv := make([]byte, 32), make([]byte, 16)
	_, _ = rand.Read(salt)
	_, _ = rand.Read(iv)
	wrappedPub, err := linkCipher(code, salt, iv, primaryEph.Pub[:])
	if err != nil {
		return types.EmptyJID, err
	}
	err = c.send(waBinary.Node{Tag: "notification", Attrs: waBinary.Attrs{
		"id": c.newID(), "from": types.ServerJID, "type": "link_code_companion_reg", "t": "0",
	}, Content: []waBinary.Node{{Tag: "link_code_companion_reg", Attrs: waBinary.Attrs{"stage": "primary_hello"}, Content: []waBinary.Node{
		{Tag: "link_code_pairing_ref", Content: []byte(l.ref)},
		{Tag: "link_code_pairing_wrapped_primary_ephemeral_pub", Content: append(append(salt, iv...), wrappedPub...)},
		{Tag: "primary_identity_pub", Content: phoneKey.Pub[:]},
	}}}})
	if err != nil {
		return types.EmptyJID, fmt.Errorf("wafake: sending primary_hello: %w", err)
	}
	var iq *waBinary.Node
	select {
	case iq = <-l.finish:
	case <-c.done:
		return types.EmptyJID, errors.New("wafake: connection closed during code pairing")
	case <-ctx.Done():
		return types.EmptyJID, ctx.Err()
	}
	reg := iq.GetChildByTag("link_code_companion_reg")
	bundle, _ := reg.GetChildByTag("link_code_pairing_wrapped_key_bundle").Content.([]byte)
	companionIdent, _ := reg.GetChildByTag("companion_identity_public").Content.([]byte)
	ephShared, err := curve25519.X25519(primaryEph.Priv[:], companionEph)
	var plain []byte
	if err == nil && len(bundle) > 44 {
		var gcm cipher.AEAD
		if gcm, err = newGCM(hkdfSHA256(ephShared, bundle[:32], "link_code_pairing_key_bundle_encryption_key")); err == nil {
			plain, err = gcm.Open(nil, bundle[32:44], bundle[44:], nil)
		}
	}
	if err != nil || len(plain) != 96 || !bytes.Equal(plain[:32], companionIdent) || !bytes.Equal(plain[32:64], phoneKey.Pub[:]) {
		c.iqError(iq, 401, "not-authorized")
		return types.EmptyJID, ErrWrongPairCode
	}
	c.result(iq)
	identShared, err := curve25519.X25519(phoneKey.Priv[:], companionIdent)
	if err != nil {
		return types.EmptyJID, err
	}
	adv := hkdfSHA256(append(append(append([]byte{}, ephShared...), identShared...), plain[64:]...), nil, "adv_secret")
	c.mu.Lock()
	c.link = nil
	c.mu.Unlock()
	return s.completePairing(ctx, c, phone, companionIdent, adv)
}
