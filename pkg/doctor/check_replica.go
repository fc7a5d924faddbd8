package doctor

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"

	"google.golang.org/api/iterator"

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
	it := c.Collection(replica.Collection).Select("recipientFingerprint").Limit(1000).Documents(ctx)
	defer it.Stop()
	total := 0
	foreign := map[string][]string{}
	for {
		snap, err := it.Next()
		if err == iterator.Done {
			break
		}
		if err != nil {
			r.fail(fmt.Sprintf("read %s: %v", replica.Collection, err))
			return r
		}
		total++
		fp, _ := snap.DataAt("recipientFingerprint")
		if s, _ := fp.(string); s != key.Fingerprint() {
			foreign[fmt.Sprint(fp)] = append(foreign[fmt.Sprint(fp)], snap.Ref.ID)
		}
	}
	r.add("copies", total)
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
	r.Status, r.Summary = OK, fmt.Sprintf("key file 0600; %d copies, all to this host's key", total)
	return r
}

func replicaNotNeeded(lockBackend, store string) string {
	if store == "postgres" {
		return "sessions are in the shared PostgreSQL store"
	}
	return "lock.backend " + lockBackend + ": no other host takes over"
}
