package replica

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"

	"filippo.io/age"
)

// Key is the replica's age key: the identity opens copies, its recipient
// encrypts them. Only the recipient's fingerprint goes to Firestore.
type Key struct {
	Identity  *age.X25519Identity
	Recipient *age.X25519Recipient
	Path      string
}

// Fingerprint names the recipient without revealing anything about the
// identity: the first 16 bytes of SHA-256 over the public key, in hex.
func (k *Key) Fingerprint() string { return Fingerprint(k.Recipient.String()) }

// Fingerprint of an age public key (age1…).
func Fingerprint(recipient string) string {
	sum := sha256.Sum256([]byte(recipient))
	return hex.EncodeToString(sum[:16])
}

// CheckKeyMode refuses a key file that anyone but its owner can read or
// write: whoever reads it opens every session copy in Firestore.
func CheckKeyMode(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("sessions.replica_key_file: %w (make one with: age-keygen -o %s && chmod 600 %s)", err, path, path)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("sessions.replica_key_file %s is not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("sessions.replica_key_file %s has mode %04o: other users could read the key that opens every session copy; fix: chmod 600 %s", path, perm, path)
	}
	return nil
}

// LoadKey reads an age identity file (age-keygen's output) with exactly one
// X25519 identity, after CheckKeyMode.
func LoadKey(path string) (*Key, error) {
	if err := CheckKeyMode(path); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("sessions.replica_key_file: %w", err)
	}
	ids, err := age.ParseIdentities(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("sessions.replica_key_file %s: %v (it holds one AGE-SECRET-KEY-1… line, as age-keygen writes it)", path, err)
	}
	if len(ids) != 1 {
		return nil, fmt.Errorf("sessions.replica_key_file %s holds %d identities; it must hold exactly one (every host uses the same)", path, len(ids))
	}
	x, ok := ids[0].(*age.X25519Identity)
	if !ok {
		return nil, fmt.Errorf("sessions.replica_key_file %s: the identity is not an age X25519 key (age-keygen without -pq makes one)", path)
	}
	return &Key{Identity: x, Recipient: x.Recipient(), Path: path}, nil
}
