package journal

import (
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wactl/wactl/pkg/store"
)

// verdict is what a failed shipment says about the entries in it.
type verdict int

const (
	// verdictShipped: the backend has the entries.
	verdictShipped verdict = iota
	// verdictRetry: the backend or the way to it failed (outage, timeout,
	// contention, quota, credentials): nothing is wrong with the entries,
	// so the whole shipper waits and tries again.
	verdictRetry
	// verdictRefused: Firestore answered and said no to what was sent
	// (InvalidArgument, OutOfRange). One entry of the batch may be the
	// cause; it is isolated, retried a few times and then dead-lettered
	// while the others ship.
	verdictRefused
	// verdictMalformed: the store's own validation refused the entry; sending it
	// again cannot help, so it is dead-lettered at once.
	verdictMalformed
)

func classify(err error) verdict {
	if err == nil || errors.Is(err, store.ErrNotFound) {
		// ErrNotFound: an update whose target is unknown; the store
		// records nothing for it, which is its answer (noted on the entry).
		return verdictShipped
	}
	if isPermanent(err) {
		return verdictMalformed
	}
	if s, ok := status.FromError(err); ok {
		return verdictOf(s.Code())
	}
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) {
		return verdictOf(se.GRPCStatus().Code())
	}
	return verdictRetry
}

// verdictOf maps a gRPC code. Only codes that describe the request itself
// refuse an entry: PermissionDenied, Unauthenticated, NotFound (no such
// database), FailedPrecondition (a missing index, a lost race) and
// ResourceExhausted concern every entry alike, and dead-lettering
// everything during a misconfiguration would be far worse than waiting.
func verdictOf(c codes.Code) verdict {
	switch c {
	case codes.OK:
		return verdictShipped
	case codes.InvalidArgument, codes.OutOfRange:
		return verdictRefused
	}
	return verdictRetry
}

// codeName is the gRPC code of err for the dead-letter table ("malformed"
// for the store's own validation).
func codeName(err error) string {
	if isPermanent(err) {
		return "malformed"
	}
	if s, ok := status.FromError(err); ok {
		return s.Code().String()
	}
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) {
		return se.GRPCStatus().Code().String()
	}
	return "Unknown"
}
