package wafake

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"go.mau.fi/libsignal/ecc"
	signallog "go.mau.fi/libsignal/logger"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waCert"
	"go.mau.fi/whatsmeow/util/keys"
	"google.golang.org/protobuf/proto"
)

// The root is derived from a fixed seed so that a child process (for example
// `wactl serve` started by a daemon test) can trust the fake without the
// parent having to ship a freshly generated key to it.
var testRoot = keys.NewKeyPairFromPrivateKey(sha256.Sum256([]byte("wactl wafake test root v1")))

var trustOnce sync.Once

// RootPublicKey is the public key of the test root that signs every fake
// server's certificate chain. A client process trusts the fake by copying it
// into whatsmeow.WACertPubKey before connecting.
func RootPublicKey() [32]byte { return *testRoot.Pub }

// RootPublicKeyHex is RootPublicKey in hex, the form used in EnvRootKey.
func RootPublicKeyHex() string { return hex.EncodeToString(testRoot.Pub[:]) }

// TrustTestRoot makes whatsmeow trust the fake's test root. whatsmeow keeps the
// trusted key in a package variable, so this must run before the first client
// connects; it is idempotent and safe to call from every test (Start and
// New call it too).
//
// It also installs a silent libsignal logger unless one is set: libsignal's
// default one prints to stdout and is created lazily by whichever goroutine
// logs first, which the race detector reports when clients start in parallel.
func TrustTestRoot() {
	trustOnce.Do(func() {
		whatsmeow.WACertPubKey = *testRoot.Pub
		if signallog.Logger == nil {
			signallog.Logger = silentSignalLog{}
		}
	})
}

type silentSignalLog struct{}

func (silentSignalLog) Debug(string, string)   {}
func (silentSignalLog) Info(string, string)    {}
func (silentSignalLog) Warning(string, string) {}
func (silentSignalLog) Error(string, string)   {}
func (silentSignalLog) Configure(string)       {}

// ParseRootKey decodes a hex root key as found in EnvRootKey.
func ParseRootKey(s string) ([32]byte, error) {
	var out [32]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		return out, fmt.Errorf("root key %q is not 64 hex digits: set it from wafake.RootPublicKeyHex()", s)
	}
	copy(out[:], b)
	return out, nil
}

// certChain builds the chain root -> intermediate -> leaf(server static key)
// that whatsmeow's verifyServerCert accepts.
func certChain(serverStatic *keys.KeyPair) ([]byte, error) {
	intermediate := keys.NewKeyPair()
	now := uint64(time.Now().Unix())
	interDetails, err := proto.Marshal(&waCert.CertChain_NoiseCertificate_Details{
		Serial:       proto.Uint32(1),
		IssuerSerial: proto.Uint32(whatsmeow.WACertIssuerSerial),
		Key:          intermediate.Pub[:],
		NotBefore:    proto.Uint64(now - 3600),
		NotAfter:     proto.Uint64(now + 30*24*3600),
	})
	if err != nil {
		return nil, err
	}
	leafDetails, err := proto.Marshal(&waCert.CertChain_NoiseCertificate_Details{
		Serial:       proto.Uint32(2),
		IssuerSerial: proto.Uint32(1),
		Key:          serverStatic.Pub[:],
		NotBefore:    proto.Uint64(now - 3600),
		NotAfter:     proto.Uint64(now + 30*24*3600),
	})
	if err != nil {
		return nil, err
	}
	interSig := ecc.CalculateSignature(ecc.NewDjbECPrivateKey(*testRoot.Priv), interDetails)
	leafSig := ecc.CalculateSignature(ecc.NewDjbECPrivateKey(*intermediate.Priv), leafDetails)
	return proto.Marshal(&waCert.CertChain{
		Intermediate: &waCert.CertChain_NoiseCertificate{Details: interDetails, Signature: interSig[:]},
		Leaf:         &waCert.CertChain_NoiseCertificate{Details: leafDetails, Signature: leafSig[:]},
	})
}
