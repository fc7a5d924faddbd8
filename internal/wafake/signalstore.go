package wafake

import (
	"context"
	"math/rand/v2"
	"sync"

	"go.mau.fi/libsignal/ecc"
	groupRecord "go.mau.fi/libsignal/groups/state/record"
	"go.mau.fi/libsignal/keys/identity"
	"go.mau.fi/libsignal/protocol"
	"go.mau.fi/libsignal/state/record"
	"go.mau.fi/libsignal/state/store"
	wastore "go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/util/keys"
)

var serializer = wastore.SignalProtobufSerializer

// signalStore is an in-memory libsignal store for one fake peer device.
// Records are kept serialized so that a failed decryption cannot leave a
// half-mutated session behind, as with a database-backed store.
type signalStore struct {
	mu         sync.Mutex
	ident      *keys.KeyPair
	regID      uint32
	signed     *keys.PreKey
	prekeys    map[uint32]*keys.PreKey
	nextPreKey uint32
	sessions   map[string][]byte
	identities map[string][32]byte
	senderKeys map[string][]byte
}

var _ store.SignalProtocol = (*signalStore)(nil)

func newSignalStore(ident *keys.KeyPair) *signalStore {
	if ident == nil {
		ident = keys.NewKeyPair()
	}
	return &signalStore{
		ident:      ident,
		regID:      rand.Uint32N(16380) + 1,
		signed:     ident.CreateSignedPreKey(1),
		prekeys:    map[uint32]*keys.PreKey{},
		nextPreKey: 1,
		sessions:   map[string][]byte{},
		identities: map[string][32]byte{},
		senderKeys: map[string][]byte{},
	}
}

// newPreKey makes a one-time prekey the peer hands out in a bundle.
func (s *signalStore) newPreKey() *keys.PreKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := keys.NewPreKey(s.nextPreKey)
	s.nextPreKey++
	s.prekeys[k.KeyID] = k
	return k
}

func (s *signalStore) GetIdentityKeyPair() *identity.KeyPair {
	return identity.NewKeyPair(identity.NewKey(ecc.NewDjbECPublicKey(*s.ident.Pub)), ecc.NewDjbECPrivateKey(*s.ident.Priv))
}

func (s *signalStore) GetLocalRegistrationID() uint32 { return s.regID }

func (s *signalStore) SaveIdentity(_ context.Context, addr *protocol.SignalAddress, key *identity.Key) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.identities[addr.String()] = key.PublicKey().PublicKey()
	return nil
}

// IsTrustedIdentity trusts on first use, like whatsmeow with AutoTrustIdentity.
func (s *signalStore) IsTrustedIdentity(context.Context, *protocol.SignalAddress, *identity.Key) (bool, error) {
	return true, nil
}

func (s *signalStore) LoadPreKey(_ context.Context, id uint32) (*record.PreKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.prekeys[id]
	if k == nil {
		return nil, nil
	}
	return record.NewPreKey(k.KeyID, ecc.NewECKeyPair(ecc.NewDjbECPublicKey(*k.Pub), ecc.NewDjbECPrivateKey(*k.Priv)), nil), nil
}

func (s *signalStore) StorePreKey(_ context.Context, id uint32, r *record.PreKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	pub := r.KeyPair().PublicKey().PublicKey()
	priv := r.KeyPair().PrivateKey().Serialize()
	s.prekeys[id] = &keys.PreKey{KeyPair: keys.KeyPair{Pub: &pub, Priv: &priv}, KeyID: id}
	return nil
}

func (s *signalStore) ContainsPreKey(_ context.Context, id uint32) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.prekeys[id] != nil, nil
}

func (s *signalStore) RemovePreKey(_ context.Context, id uint32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.prekeys, id)
	return nil
}

func (s *signalStore) LoadSession(_ context.Context, addr *protocol.SignalAddress) (*record.Session, error) {
	s.mu.Lock()
	raw := s.sessions[addr.String()]
	s.mu.Unlock()
	if raw == nil {
		return record.NewSession(serializer.Session, serializer.State), nil
	}
	return record.NewSessionFromBytes(raw, serializer.Session, serializer.State)
}

func (s *signalStore) GetSubDeviceSessions(context.Context, string) ([]uint32, error) {
	return nil, nil
}

func (s *signalStore) StoreSession(_ context.Context, addr *protocol.SignalAddress, r *record.Session) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessions[addr.String()] = r.Serialize()
	return nil
}

func (s *signalStore) ContainsSession(_ context.Context, addr *protocol.SignalAddress) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.sessions[addr.String()]
	return ok, nil
}

func (s *signalStore) DeleteSession(_ context.Context, addr *protocol.SignalAddress) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, addr.String())
	return nil
}

func (s *signalStore) DeleteAllSessions(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessions = map[string][]byte{}
	return nil
}

func (s *signalStore) LoadSignedPreKey(_ context.Context, id uint32) (*record.SignedPreKey, error) {
	if id != s.signed.KeyID {
		return nil, nil
	}
	k := s.signed
	return record.NewSignedPreKey(id, 0, ecc.NewECKeyPair(ecc.NewDjbECPublicKey(*k.Pub), ecc.NewDjbECPrivateKey(*k.Priv)), *k.Signature, nil), nil
}

func (s *signalStore) LoadSignedPreKeys(ctx context.Context) ([]*record.SignedPreKey, error) {
	r, err := s.LoadSignedPreKey(ctx, s.signed.KeyID)
	return []*record.SignedPreKey{r}, err
}

func (s *signalStore) StoreSignedPreKey(context.Context, uint32, *record.SignedPreKey) error {
	return nil
}

func (s *signalStore) ContainsSignedPreKey(_ context.Context, id uint32) (bool, error) {
	return id == s.signed.KeyID, nil
}

func (s *signalStore) RemoveSignedPreKey(context.Context, uint32) error { return nil }

func (s *signalStore) StoreSenderKey(_ context.Context, name *protocol.SenderKeyName, r *groupRecord.SenderKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.senderKeys[name.GroupID()+"|"+name.Sender().String()] = r.Serialize()
	return nil
}

func (s *signalStore) LoadSenderKey(_ context.Context, name *protocol.SenderKeyName) (*groupRecord.SenderKey, error) {
	s.mu.Lock()
	raw := s.senderKeys[name.GroupID()+"|"+name.Sender().String()]
	s.mu.Unlock()
	if raw == nil {
		return groupRecord.NewSenderKey(serializer.SenderKeyRecord, serializer.SenderKeyState), nil
	}
	return groupRecord.NewSenderKeyFromBytes(raw, serializer.SenderKeyRecord, serializer.SenderKeyState)
}
