package lock

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
)

// bindingOf ties wactl's holder fields to the fields the Node service
// writes. The Node service takes an expired lease over (and "extends" a
// lease carrying its own instance id) with a merge update of its five
// fields, which leaves wactl's host, pid, session and epoch in place: without
// this binding such a document still looked like the earlier wactl
// process's lease, and a restarted wactl with the same instance id
// "reclaimed" it while the Node service was ACTIVE (issue 15.1). Any write
// that changes holderInstanceId or leaseUntil without recomputing the
// binding — every Node write does — makes the document the Node service's.
// It is a plain hash, not a secret: it guards against a writer that does not
// know about it, not against one that forges it.
func bindingOf(h Holder, leaseUntil, epoch int64) string {
	sum := sha256.New()
	for _, s := range []string{"wactl-lease-v1", h.InstanceID, strconv.FormatInt(leaseUntil, 10),
		strconv.FormatInt(epoch, 10), h.Session, h.Host, strconv.Itoa(h.PID), h.DataDir,
		strconv.FormatInt(h.StartedAt.UTC().UnixMicro(), 10)} {
		sum.Write([]byte(s))
		sum.Write([]byte{0})
	}
	return hex.EncodeToString(sum.Sum(nil)[:16])
}
