package firestore

import (
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// PermanentError marks a failure that retrying cannot fix (a malformed
// message). The journal recognises it through its Permanent method and sets
// the entry aside instead of retrying it forever.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string   { return e.Err.Error() }
func (e *PermanentError) Unwrap() error   { return e.Err }
func (e *PermanentError) Permanent() bool { return true }

func code(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	if s, ok := status.FromError(err); ok {
		return s.Code()
	}
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) {
		return se.GRPCStatus().Code()
	}
	return codes.Unknown
}

func isNotFound(err error) bool { return code(err) == codes.NotFound }

// isConflict says another writer changed a document between our read and
// our conditional write: read again and decide again.
func isConflict(err error) bool {
	switch code(err) {
	case codes.AlreadyExists, codes.FailedPrecondition, codes.Aborted, codes.NotFound:
		return true
	}
	return false
}

// refused says a commit's precondition failed: a Create found the document,
// or an update found it changed or gone.
func refused(err error) bool {
	switch code(err) {
	case codes.AlreadyExists, codes.FailedPrecondition, codes.NotFound:
		return true
	}
	return false
}
