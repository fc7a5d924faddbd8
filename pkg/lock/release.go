package lock

import (
	"context"
	"errors"
	"fmt"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// LegacyRenewInterval is how often the old Node service rewrites its lease
// (every 30 s). A lease document in its format that nobody has written for
// longer belongs to an old service that no longer runs.
const LegacyRenewInterval = 30 * time.Second

// LeaseView is one read of the lease document, every time on Firestore's
// clock (the read's ReadTime and the document's UpdateTime), none local.
type LeaseView struct {
	Exists bool   `json:"exists"`
	Holder string `json:"holder,omitempty"`
	// Format: "wactl" (bound to the wactl process it names), "legacy" (the
	// old service's, or wactl fields that no longer belong to the holder),
	// "unreadable".
	Format     string        `json:"format,omitempty"`
	LeaseUntil time.Time     `json:"leaseUntil,omitzero"`
	UpdateTime time.Time     `json:"updateTime,omitzero"`
	ReadTime   time.Time     `json:"readTime,omitzero"`
	Expired    bool          `json:"expired"`
	SinceWrite time.Duration `json:"-"`
	// SinceWriteSec is SinceWrite in seconds, for JSON.
	SinceWriteSec float64  `json:"sinceWriteSec"`
	Problems      []string `json:"problems,omitempty"`

	updateTime time.Time // precondition for the release write
}

// StaleLegacy reports a lease that blocks every takeover although its
// holder — the old service — has stopped: in the old service's format,
// not expired, and not rewritten for longer than renew on Firestore's clock.
func (v LeaseView) StaleLegacy(renew time.Duration) bool {
	return v.Exists && v.Format == "legacy" && !v.Expired && v.SinceWrite > renew
}

// ReadLease reads the lease document once.
func ReadLease(ctx context.Context, c *firestore.Client, docPath string) (LeaseView, error) {
	if docPath == "" {
		docPath = DefaultDocPath
	}
	doc := c.Doc(docPath)
	if doc == nil {
		return LeaseView{}, fmt.Errorf("lock: %q is not a document path", docPath)
	}
	snap, err := doc.Get(ctx)
	if status.Code(err) == codes.NotFound && snap != nil && !snap.ReadTime.IsZero() {
		return LeaseView{ReadTime: snap.ReadTime}, nil
	}
	if err != nil {
		return LeaseView{}, fmt.Errorf("lock: read %s: %w", docPath, err)
	}
	return viewOf(snap), nil
}

func viewOf(snap *firestore.DocumentSnapshot) LeaseView {
	l := parseLease(snap.Data())
	v := LeaseView{Exists: true, Holder: l.Holder.InstanceID, UpdateTime: snap.UpdateTime, ReadTime: snap.ReadTime,
		SinceWrite: snap.ReadTime.Sub(snap.UpdateTime), Problems: l.Problems, updateTime: snap.UpdateTime}
	v.SinceWriteSec = v.SinceWrite.Seconds()
	switch {
	case !l.CoreOK || len(l.Problems) > 0:
		v.Format = "unreadable"
	case l.Wactl:
		v.Format = "wactl"
	default:
		v.Format = "legacy"
	}
	if l.CoreOK {
		v.LeaseUntil = time.UnixMilli(l.LeaseUntil)
		v.Expired = snap.ReadTime.UnixMilli() >= l.LeaseUntil
	}
	return v
}

// ErrReleaseRefused wraps every reason ReleaseLegacy does not write.
var ErrReleaseRefused = errors.New("lease release refused")

// ReleaseResult says what ReleaseLegacy found and did.
type ReleaseResult struct {
	Lease LeaseView `json:"lease"`
	// Released: the lease was expired by this call. False with a nil
	// error: nothing blocks any more (no document, or already expired).
	Released bool   `json:"released"`
	Detail   string `json:"detail"`
}

// ReleaseLegacy ends the lease of an old service that has stopped without
// deleting it (the deployed version exits on SIGINT before its release
// code), so that wactl takes over at once instead of after up to 90 s. It
// refuses (ErrReleaseRefused) unless the document is in the old service's
// format (no valid wactl binding), names holder, and Firestore's clock shows
// nobody has written it for longer than minIdle (the old service renews
// every 30 s: LegacyRenewInterval). The write is conditional on the
// document being exactly the one judged, and only sets leaseUntil to the
// read time — what the old service's own takeover rule treats as expired —
// so the epoch sequence and previousHolder stay intact.
func ReleaseLegacy(ctx context.Context, c *firestore.Client, docPath, holder string, minIdle time.Duration) (ReleaseResult, error) {
	if holder == "" {
		return ReleaseResult{}, fmt.Errorf("%w: name the holder whose lease to end (--holder ID)", ErrReleaseRefused)
	}
	if id, wactl := InstanceOfHolder(holder); wactl {
		return ReleaseResult{}, fmt.Errorf("%w: %q is a wactl holder (instance %s), not the old service: a stopped wactl releases its lease, and a killed one's runs out within lock.ttl", ErrReleaseRefused, holder, id)
	}
	if minIdle <= 0 {
		minIdle = LegacyRenewInterval
	}
	if docPath == "" {
		docPath = DefaultDocPath
	}
	for range 3 {
		v, err := ReadLease(ctx, c, docPath)
		if err != nil {
			return ReleaseResult{}, err
		}
		r := ReleaseResult{Lease: v}
		switch {
		case !v.Exists:
			r.Detail = "no lease document: nothing blocks a takeover"
			return r, nil
		case v.Format == "unreadable":
			return r, fmt.Errorf("%w: the lease document is unreadable (%v); wactl takes it over by itself once nobody has written it for the garbage grace", ErrReleaseRefused, v.Problems)
		case v.Holder != holder:
			return r, fmt.Errorf("%w: the lease is held by %q, not %q", ErrReleaseRefused, v.Holder, holder)
		case v.Format == "wactl":
			return r, fmt.Errorf("%w: the lease of %q was written by a running wactl process (its binding is valid); stop that wactl instead: it releases its lease when it stops", ErrReleaseRefused, holder)
		case v.Expired:
			r.Detail = fmt.Sprintf("the lease of %s already expired at %s: nothing blocks a takeover", holder, v.LeaseUntil.UTC().Format(time.RFC3339))
			return r, nil
		case v.SinceWrite <= minIdle:
			return r, fmt.Errorf("%w: %s renewed its lease %s ago (Firestore's clock); the old service renews every %s, so it is still running: stop it first (sudo systemctl stop whatsapp-backend), then retry after %s",
				ErrReleaseRefused, holder, v.SinceWrite.Round(time.Millisecond), LegacyRenewInterval, (minIdle-v.SinceWrite).Round(time.Second)+time.Second)
		}
		_, err = c.Doc(docPath).Update(ctx, []firestore.Update{
			{Path: fLeaseUntil, Value: v.ReadTime.UnixMilli()},
			{Path: fUpdatedAt, Value: firestore.ServerTimestamp},
			{Path: "releasedBy", Value: "wactl lease release"},
		}, firestore.LastUpdateTime(v.updateTime))
		if c := status.Code(err); c == codes.FailedPrecondition || c == codes.NotFound {
			continue // written meanwhile: judge the new version
		}
		if err != nil {
			return r, fmt.Errorf("lock: release %s: %w", docPath, err)
		}
		r.Released = true
		r.Detail = fmt.Sprintf("ended the lease of %s (not renewed for %s on Firestore's clock); wactl takes over at its next attempt",
			holder, v.SinceWrite.Round(time.Second))
		return r, nil
	}
	return ReleaseResult{}, errors.New("lock: the lease document changed during the release three times; run the command again")
}
