package accounts

import (
	"context"
	"fmt"
	"time"

	"github.com/wactl/wactl/internal/wiring"
	"github.com/wactl/wactl/pkg/config"
	"github.com/wactl/wactl/pkg/replica"
	"github.com/wactl/wactl/pkg/sessions"
)

// replicaDeleteTimeout bounds the Firestore call of `accounts remove`: an
// unreachable Firestore must not hang the command (the local tombstone
// covers that case).
var replicaDeleteTimeout = 8 * time.Second

// forgetReplica makes the removal stick with the session replica on
// (issue 20): otherwise the next ACTIVE start would restore the account
// from its copy in Firestore. With --purge it first leaves a tombstone
// under removed/ (the account's last replica generation), which the
// daemon honours at its next start; then it turns the copy in Firestore
// into a tombstone, which every host honours. It returns what to tell the
// operator; a Firestore failure is not an error of the command (the local
// removal is done and the tombstone covers it).
func forgetReplica(ctx context.Context, cfg *config.Config, sess *sessions.Store, id string, gen int64, purge bool) (string, error) {
	if cfg.Sessions.Replica != "firestore" {
		return "", nil
	}
	if purge {
		if _, err := replica.WritePurgedMarker(sess.Root(), id, gen, time.Now()); err != nil {
			return "", fmt.Errorf("purged %s, but could not leave its tombstone under removed/ (%w): the next start of wactl serve could restore it from its copy in Firestore; remove the copy with the daemon running (the API's delete) or retry", id, err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, replicaDeleteTimeout)
	defer cancel()
	client, err := wiring.Firestore(ctx, cfg)
	if err == nil && client == nil {
		err = fmt.Errorf("no Firestore configured")
	}
	if err == nil {
		defer client.Close()
		err = replica.New(replica.Options{Client: client, Instance: "wactl accounts remove"}).DeleteUnfenced(ctx, id)
	}
	if err != nil {
		return fmt.Sprintf("its session copy in Firestore (%s/%s) could not be deleted now (%v); the next start of wactl serve on this host deletes it instead of restoring it",
			replica.Collection, id, err), nil
	}
	return fmt.Sprintf("its session copy in Firestore (%s/%s) is deleted (a tombstone stays, so no host restores it)", replica.Collection, id), nil
}
