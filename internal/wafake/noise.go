package wafake

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/coder/websocket"
	"golang.org/x/crypto/curve25519"
	"golang.org/x/crypto/hkdf"
	"google.golang.org/protobuf/proto"

	"go.mau.fi/whatsmeow/proto/waWa6"
	"go.mau.fi/whatsmeow/socket"
	"go.mau.fi/whatsmeow/util/keys"
)

// symmetricState is the responder's half of Noise_XX_25519_AESGCM_SHA256 as
// whatsmeow's socket package runs the initiator's half.
type symmetricState struct {
	hash    []byte
	salt    []byte
	aead    cipher.AEAD
	counter uint32
}

func newSymmetricState() (*symmetricState, error) {
	// The pattern name is exactly 32 bytes, so it is used as the initial hash.
	h := []byte(socket.NoiseStartPattern)
	ss := &symmetricState{hash: h, salt: h}
	var err error
	if ss.aead, err = newGCM(h); err != nil {
		return nil, err
	}
	ss.mixHash(socket.WAConnHeader)
	return ss, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func nonce(counter uint32) []byte {
	iv := make([]byte, 12)
	binary.BigEndian.PutUint32(iv[8:], counter)
	return iv
}

func (ss *symmetricState) mixHash(data []byte) {
	sum := sha256.Sum256(append(append([]byte{}, ss.hash...), data...))
	ss.hash = sum[:]
}

func expand(salt, ikm []byte) (a, b []byte, err error) {
	r := hkdf.New(sha256.New, ikm, salt, nil)
	a, b = make([]byte, 32), make([]byte, 32)
	if _, err = io.ReadFull(r, a); err == nil {
		_, err = io.ReadFull(r, b)
	}
	return a, b, err
}

func (ss *symmetricState) mixDH(priv, pub []byte) error {
	shared, err := curve25519.X25519(priv, pub)
	if err != nil {
		return err
	}
	salt, key, err := expand(ss.salt, shared)
	if err != nil {
		return err
	}
	ss.salt, ss.counter = salt, 0
	ss.aead, err = newGCM(key)
	return err
}

func (ss *symmetricState) encrypt(plaintext []byte) []byte {
	ct := ss.aead.Seal(nil, nonce(ss.counter), plaintext, ss.hash)
	ss.counter++
	ss.mixHash(ct)
	return ct
}

func (ss *symmetricState) decrypt(ciphertext []byte) ([]byte, error) {
	pt, err := ss.aead.Open(nil, nonce(ss.counter), ciphertext, ss.hash)
	ss.counter++
	if err != nil {
		return nil, err
	}
	ss.mixHash(ciphertext)
	return pt, nil
}

// transport carries length-prefixed frames over one websocket; after the
// handshake every frame is AES-GCM encrypted with per-direction counters.
type transport struct {
	ws  *websocket.Conn
	buf bytes.Buffer

	sawHeader bool
	pending   [][]byte

	writeMu   sync.Mutex
	readKey   cipher.AEAD
	writeKey  cipher.AEAD
	readCtr   uint32
	writeCtr  uint32
	clientKey []byte // the client's static noise public key
	payload   *waWa6.ClientPayload
}

var errBadFrame = errors.New("wafake: malformed frame from client")

func (t *transport) readRaw(ctx context.Context) ([]byte, error) {
	for {
		if len(t.pending) > 0 {
			f := t.pending[0]
			t.pending = t.pending[1:]
			return f, nil
		}
		typ, data, err := t.ws.Read(ctx)
		if err != nil {
			return nil, err
		}
		if typ != websocket.MessageBinary {
			continue
		}
		t.buf.Write(data)
		if !t.sawHeader {
			if t.buf.Len() < len(socket.WAConnHeader) {
				continue
			}
			if !bytes.Equal(t.buf.Next(len(socket.WAConnHeader)), socket.WAConnHeader) {
				return nil, fmt.Errorf("%w: bad connection header", errBadFrame)
			}
			t.sawHeader = true
		}
		t.pending = append(t.pending, splitFrames(&t.buf)...)
	}
}

// splitFrames removes every complete 3-byte-length-prefixed frame from buf,
// leaving a partial one for the next websocket message.
func splitFrames(buf *bytes.Buffer) [][]byte {
	var out [][]byte
	for buf.Len() >= 3 {
		b := buf.Bytes()
		n := int(b[0])<<16 | int(b[1])<<8 | int(b[2])
		if buf.Len() < 3+n {
			break
		}
		buf.Next(3)
		out = append(out, append([]byte{}, buf.Next(n)...))
	}
	return out
}

func (t *transport) writeRaw(ctx context.Context, data []byte) error {
	frame := make([]byte, 3+len(data))
	frame[0], frame[1], frame[2] = byte(len(data)>>16), byte(len(data)>>8), byte(len(data))
	copy(frame[3:], data)
	return t.ws.Write(ctx, websocket.MessageBinary, frame)
}

// handshake runs the responder side and leaves t ready for encrypted frames.
func (t *transport) handshake(ctx context.Context, static *keys.KeyPair, chain []byte) error {
	ss, err := newSymmetricState()
	if err != nil {
		return err
	}
	raw, err := t.readRaw(ctx)
	if err != nil {
		return err
	}
	var hello waWa6.HandshakeMessage
	if err = proto.Unmarshal(raw, &hello); err != nil || len(hello.GetClientHello().GetEphemeral()) != 32 {
		return fmt.Errorf("%w: bad client hello", errBadFrame)
	}
	clientEph := hello.GetClientHello().GetEphemeral()
	ss.mixHash(clientEph)

	eph := keys.NewKeyPair()
	ss.mixHash(eph.Pub[:])
	if err = ss.mixDH(eph.Priv[:], clientEph); err != nil {
		return err
	}
	staticCT := ss.encrypt(static.Pub[:])
	if err = ss.mixDH(static.Priv[:], clientEph); err != nil {
		return err
	}
	certCT := ss.encrypt(chain)
	out, err := proto.Marshal(&waWa6.HandshakeMessage{ServerHello: &waWa6.HandshakeMessage_ServerHello{
		Ephemeral: eph.Pub[:], Static: staticCT, Payload: certCT,
	}})
	if err != nil {
		return err
	}
	if err = t.writeRaw(ctx, out); err != nil {
		return err
	}

	if raw, err = t.readRaw(ctx); err != nil {
		return err
	}
	var finish waWa6.HandshakeMessage
	if err = proto.Unmarshal(raw, &finish); err != nil || finish.GetClientFinish() == nil {
		return fmt.Errorf("%w: bad client finish", errBadFrame)
	}
	clientStatic, err := ss.decrypt(finish.GetClientFinish().GetStatic())
	if err != nil || len(clientStatic) != 32 {
		return fmt.Errorf("%w: cannot decrypt client static key", errBadFrame)
	}
	if err = ss.mixDH(eph.Priv[:], clientStatic); err != nil {
		return err
	}
	payloadRaw, err := ss.decrypt(finish.GetClientFinish().GetPayload())
	if err != nil {
		return fmt.Errorf("%w: cannot decrypt client payload", errBadFrame)
	}
	var payload waWa6.ClientPayload
	if err = proto.Unmarshal(payloadRaw, &payload); err != nil {
		return fmt.Errorf("%w: bad client payload", errBadFrame)
	}
	clientWrite, clientRead, err := expand(ss.salt, nil)
	if err != nil {
		return err
	}
	if t.readKey, err = newGCM(clientWrite); err != nil {
		return err
	}
	if t.writeKey, err = newGCM(clientRead); err != nil {
		return err
	}
	t.clientKey = clientStatic
	t.payload = &payload
	return nil
}

func (t *transport) readFrame(ctx context.Context) ([]byte, error) {
	ct, err := t.readRaw(ctx)
	if err != nil {
		return nil, err
	}
	pt, err := t.readKey.Open(nil, nonce(t.readCtr), ct, nil)
	t.readCtr++
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errBadFrame, err)
	}
	return pt, nil
}

func (t *transport) writeFrame(ctx context.Context, plaintext []byte) error {
	t.writeMu.Lock()
	defer t.writeMu.Unlock()
	ct := t.writeKey.Seal(nil, nonce(t.writeCtr), plaintext, nil)
	t.writeCtr++
	return t.writeRaw(ctx, ct)
}
