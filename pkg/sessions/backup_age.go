package sessions

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"filippo.io/age"
	"filippo.io/age/armor"
)

// A backup file is a snapshot (EncodeSnapshot) encrypted with age to X25519
// (or post-quantum hybrid) recipients or to a passphrase (scrypt). Only
// with Encryption.Plaintext is it written as the bare gzip payload.

var (
	// ErrNeedKey: the file is encrypted and no identity or passphrase was given.
	ErrNeedKey = errors.New("the backup is encrypted")
	// ErrWrongKey: none of the given identities or the passphrase opens the file.
	ErrWrongKey = errors.New("none of the given keys opens the backup")
	// ErrPlaintext: the file is not encrypted and plaintext was not allowed.
	ErrPlaintext = errors.New("the backup is not encrypted")
)

// Encryption says how WriteBackup protects the file.
type Encryption struct {
	Recipients []age.Recipient
	// Plaintext writes without encryption; Recipients must be empty.
	Plaintext bool
}

// ScryptWorkFactor is the scrypt cost (2^N) of passphrase-encrypted
// backups: age's default, about 1 s of CPU and 256 MiB of memory.
var ScryptWorkFactor = 18

// ParseRecipients parses age recipients given on the command line.
func ParseRecipients(list []string) ([]age.Recipient, error) {
	if len(list) == 0 {
		return nil, nil
	}
	recs, err := age.ParseRecipients(strings.NewReader(strings.Join(list, "\n")))
	if err != nil {
		return nil, fmt.Errorf("--recipient: %v (an age public key starts with age1; make a key pair with age-keygen)", err)
	}
	return recs, nil
}

// RecipientsFromFile reads an age recipients file: one public key a line,
// # comments.
func RecipientsFromFile(path string) ([]age.Recipient, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("recipients file: %w", err)
	}
	defer f.Close()
	recs, err := age.ParseRecipients(f)
	if err != nil {
		return nil, fmt.Errorf("recipients file %s: %v", path, err)
	}
	return recs, nil
}

// readSecretFile reads a key or passphrase file, refusing one that others
// can read: whoever can read it can open every backup.
func readSecretFile(path, what string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if st.Mode().Perm()&0o007 != 0 {
		return nil, fmt.Errorf("%s %s is readable by other users (mode %04o); fix: chmod 600 %s", what, path, st.Mode().Perm(), shellQuote(path))
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return data, nil
}

// PassphraseFromFile reads a passphrase: the file's first line, without
// its line ending.
func PassphraseFromFile(path string) (string, error) {
	data, err := readSecretFile(path, "passphrase file")
	if err != nil {
		return "", err
	}
	line, _, _ := strings.Cut(string(data), "\n")
	line = strings.TrimSuffix(line, "\r")
	if line == "" {
		return "", fmt.Errorf("passphrase file %s is empty (its first line is the passphrase)", path)
	}
	return line, nil
}

// PassphraseRecipient encrypts to a passphrase with ScryptWorkFactor.
func PassphraseRecipient(pass string) (age.Recipient, error) {
	r, err := age.NewScryptRecipient(pass)
	if err != nil {
		return nil, err
	}
	r.SetWorkFactor(ScryptWorkFactor)
	return r, nil
}

// PassphraseIdentity opens a passphrase-encrypted backup.
func PassphraseIdentity(pass string) (age.Identity, error) {
	return age.NewScryptIdentity(pass)
}

// IdentitiesFromFile reads an age identity file (age-keygen's output).
func IdentitiesFromFile(path string) ([]age.Identity, error) {
	data, err := readSecretFile(path, "identity file")
	if err != nil {
		return nil, err
	}
	ids, err := age.ParseIdentities(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("identity file %s: %v (it holds AGE-SECRET-KEY-1… lines, as age-keygen writes them)", path, err)
	}
	return ids, nil
}

// WriteBackup writes snap to path, mode 0600, atomically: a temp file in
// the same directory, fsynced, renamed over path, directory fsynced. An
// error leaves path as it was. It returns the file's size.
func WriteBackup(path string, snap *Snapshot, enc Encryption) (int64, error) {
	if enc.Plaintext == (len(enc.Recipients) > 0) {
		return 0, errors.New("a backup needs recipients or a passphrase (or, explicitly, plaintext), not both and not neither")
	}
	dir := filepath.Dir(path)
	tmp := filepath.Join(dir, "."+filepath.Base(path)+".tmp-"+randomHex(6))
	f, err := createPrivate(tmp)
	if err != nil {
		return 0, fmt.Errorf("create %s: %w", tmp, err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<16)
	if err := SealSnapshot(bw, snap, enc); err != nil {
		return 0, fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := bw.Flush(); err != nil {
		return 0, fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("fsync %s: %w", tmp, err)
	}
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if err := f.Close(); err != nil {
		return 0, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return 0, fmt.Errorf("rename %s to %s: %w", tmp, path, err)
	}
	ok = true
	return st.Size(), syncDir(dir)
}

// SealSnapshot writes snap to w, encrypted as enc says: the body of a
// backup file, or of any other copy (issue 20's replica uses it per
// account, with EncodeAccount's one-account snapshots).
func SealSnapshot(w io.Writer, snap *Snapshot, enc Encryption) error {
	if enc.Plaintext == (len(enc.Recipients) > 0) {
		return errors.New("a backup needs recipients or a passphrase (or, explicitly, plaintext), not both and not neither")
	}
	if enc.Plaintext {
		return EncodeSnapshot(w, snap)
	}
	aw, err := age.Encrypt(w, enc.Recipients...)
	if err != nil {
		return fmt.Errorf("encrypt: %w", err)
	}
	if err := EncodeSnapshot(aw, snap); err != nil {
		return err
	}
	return aw.Close()
}

const ageHeader = "age-encryption.org/v1\n"

// ReadBackup opens and fully checks a backup before anything is restored:
// decryption (age authenticates every chunk and the end of the stream, so a
// truncated or altered file fails), then the snapshot's own digests.
// Encrypted files need identities; a plaintext file needs allowPlaintext.
func ReadBackup(path string, ids []age.Identity, allowPlaintext bool) (*Snapshot, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	snap, err := OpenSnapshot(f, ids, allowPlaintext)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return snap, nil
}

// OpenSnapshot is ReadBackup on a reader: it decrypts (or, when allowed,
// reads plaintext) and verifies the whole snapshot.
func OpenSnapshot(r io.Reader, ids []age.Identity, allowPlaintext bool) (*Snapshot, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	head, _ := br.Peek(len(armor.Header))
	var payload io.Reader
	var err error
	switch {
	case bytes.HasPrefix(head, []byte(ageHeader)) || bytes.HasPrefix(head, []byte(armor.Header)):
		if len(ids) == 0 {
			return nil, fmt.Errorf("%w: give --identity FILE (the age key) or --passphrase-file FILE", ErrNeedKey)
		}
		var src io.Reader = br
		if bytes.HasPrefix(head, []byte(armor.Header)) {
			src = armor.NewReader(br)
		}
		payload, err = age.Decrypt(src, ids...)
		var nomatch *age.NoIdentityMatchError
		if errors.As(err, &nomatch) {
			return nil, fmt.Errorf("%w: it was encrypted to %s, and the key or passphrase given is not one of them", ErrWrongKey, describeStanzas(nomatch.StanzaTypes))
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadSnapshot, err)
		}
	case len(head) >= 2 && head[0] == 0x1f && head[1] == 0x8b:
		if !allowPlaintext {
			return nil, fmt.Errorf("%w: it is a plaintext snapshot; restoring it needs --insecure-plaintext", ErrPlaintext)
		}
		payload = br
	default:
		return nil, fmt.Errorf("%w: neither an age-encrypted backup nor a wactl snapshot", ErrBadSnapshot)
	}
	return DecodeSnapshot(payload)
}

func describeStanzas(types []string) string {
	seen := map[string]bool{}
	var out []string
	for _, t := range types {
		name := t
		switch t {
		case "X25519":
			name = "age X25519 keys"
		case "scrypt":
			name = "a passphrase"
		case "mlkem768x25519":
			name = "age post-quantum keys"
		}
		if !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	if len(out) == 0 {
		return "unknown recipients"
	}
	return strings.Join(out, " and ")
}
