package doctor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/wactl/wactl/pkg/replica"
)

// checkReplica (issue 20): recommends the Firestore session replica where a
// takeover would otherwise find no sessions (the Firestore lease without a
// shared PostgreSQL device store), and when it is on, checks the key file's
// mode and that the copies in Firestore were encrypted to this host's key
// (every host must use the same key file, or the host that takes over
// cannot open them).
func checkReplica(ctx context.Context, env *Env) Result {
	var r Result
	if env.Config == nil {
		r.Status, r.Summary = Skip, "skipped: no configuration"
		return r
	}
	cfg := env.Config
	r.add("replica", cfg.Sessions.Replica)
	if cfg.Sessions.Replica != "firestore" {
		if cfg.LockBackend() == "firestore" && cfg.Sessions.Store != "postgres" {
			r.warn("the Firestore lease hands ACTIVE to another host, but sessions are only on this disk: after losing this host every phone needs a new QR")
			r.note("turn on the encrypted session replica: make one key, copy it to every host (mode 0600), then set sessions.replica: firestore and sessions.replica_key_file: /etc/wactl/replica.key (docs/replica.md); or use sessions.store: postgres")
			r.fix(Fix{Summary: "make the replica key (once; copy the same file to every host)",
				Commands: []string{"age-keygen -o /etc/wactl/replica.key && chmod 600 /etc/wactl/replica.key"}})
			return r
		}
		r.Status, r.Summary = OK, "off (not needed: "+replicaNotNeeded(cfg.LockBackend(), cfg.Sessions.Store)+")"
		return r
	}
	path := cfg.Sessions.ReplicaKeyFile
	r.add("keyFile", path)
	if err := replica.CheckKeyMode(path); err != nil {
		r.fail(err.Error())
		if st, serr := os.Stat(path); serr == nil && st.Mode().IsRegular() {
			r.fix(Fix{Summary: "make the key file readable by its owner only", Commands: []string{"chmod 600 " + shellQuote(path)},
				Auto: true, apply: func(context.Context) error { return os.Chmod(path, 0o600) }})
		}
		return r
	}
	key, err := replica.LoadKey(path)
	if err != nil {
		r.fail(err.Error())
		return r
	}
	r.add("recipient", key.Fingerprint())
	if env.Offline {
		r.Status, r.Summary = OK, "key file 0600 and readable; copies in Firestore not checked (--offline)"
		return r
	}
	c, err := env.firestoreClient(ctx)
	if err != nil {
		r.fail("Firestore: " + err.Error())
		return r
	}
	// The pointer documents are small (the ciphertext is in chunks/): read
	// them whole, to find damaged ones and tombstones too.
	docs, err := c.Collection(replica.Collection).Limit(replicaDoctorLimit).Documents(ctx).GetAll()
	if err != nil {
		r.fail(fmt.Sprintf("read %s: %v", replica.Collection, err))
		return r
	}
	total, tombstones := 0, 0
	foreign := map[string][]string{}
	var damagedPointers, own []string
	for _, snap := range docs {
		in, err := replica.ParsePointer(snap)
		if err != nil {
			damagedPointers = append(damagedPointers, fmt.Sprintf("%s/%s (%v)", replica.Collection, snap.Ref.ID, err))
			continue
		}
		if in.Deleted {
			tombstones++
			continue
		}
		total++
		if in.Recipient != key.Fingerprint() {
			foreign[in.Recipient] = append(foreign[in.Recipient], snap.Ref.ID)
			continue
		}
		own = append(own, snap.Ref.ID)
	}
	r.add("copies", total)
	r.add("tombstones", tombstones)
	if len(foreign) > 0 {
		var parts []string
		for fp, ids := range foreign {
			sort.Strings(ids)
			parts = append(parts, fmt.Sprintf("%d to %s (e.g. %s)", len(ids), fp, ids[0]))
		}
		sort.Strings(parts)
		r.fail(fmt.Sprintf("copies encrypted to another key than this host's (%s): %s; this host could not restore them — give every host the same sessions.replica_key_file",
			key.Fingerprint(), strings.Join(parts, ", ")))
		return r
	}
	// Open every copy in this host's key (bounded): a damaged one is what
	// the restore would refuse.
	rep := replica.New(replica.Options{Client: c, Key: key, Instance: "wactl doctor"})
	var damaged []string
	for i, id := range own {
		if i >= replicaDoctorOpen || ctx.Err() != nil {
			r.note("opened the first %d copies only", i)
			break
		}
		if _, _, err := rep.Get(ctx, id); err != nil && !errors.Is(err, replica.ErrNoReplica) {
			damaged = append(damaged, fmt.Sprintf("%s (%v)", id, err))
		}
	}
	if len(damagedPointers) > 0 {
		r.fail(fmt.Sprintf("%d pointer documents are damaged, so no host can restore these accounts and their copies are not current: %s",
			len(damagedPointers), strings.Join(damagedPointers, "; ")))
		r.note("the ACTIVE host rewrites a damaged pointer at its next copy of the account; wactl doctor --fix rebuilds it now from the newest generation of chunks that opens with this host's key (or leaves a tombstone the ACTIVE host writes over), conditional on the damaged document not changing meanwhile")
		ids := make([]string, 0, len(damagedPointers))
		for _, d := range damagedPointers {
			id, _, _ := strings.Cut(strings.TrimPrefix(d, replica.Collection+"/"), " ")
			ids = append(ids, id)
		}
		r.fix(Fix{Summary: "rebuild the damaged pointer documents", Commands: []string{"wactl doctor --fix"}, Auto: true,
			apply: func(ctx context.Context) error {
				var errs []error
				for _, id := range ids {
					if _, err := rep.RepairPointer(ctx, id); err != nil && !errors.Is(err, replica.ErrNoReplica) {
						errs = append(errs, err)
					}
				}
				return errors.Join(errs...)
			}})
		return r
	}
	if len(damaged) > 0 {
		r.fail(fmt.Sprintf("%d copies are damaged and would be refused by the host that takes over (it keeps its local session, or the account needs a new QR): %s",
			len(damaged), strings.Join(damaged, "; ")))
		r.note("the ACTIVE host writes a new copy at the account's next change, and a host that becomes ACTIVE with a local session of the account writes it at once")
		return r
	}
	r.Status, r.Summary = OK, fmt.Sprintf("key file 0600; %d copies, all to this host's key and readable", total)
	return r
}

// How many pointer documents doctor reads, and how many copies it opens.
const (
	replicaDoctorLimit = 1000
	replicaDoctorOpen  = 200
)

func replicaNotNeeded(lockBackend, store string) string {
	if store == "postgres" {
		return "sessions are in the shared PostgreSQL store"
	}
	return "lock.backend " + lockBackend + ": no other host takes over"
}
