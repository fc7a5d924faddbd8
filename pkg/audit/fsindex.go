package audit

import (
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// IndexesFile is where the indexes wactl's queries need are listed, for
// `firebase deploy --only firestore:indexes`.
const IndexesFile = "configs/firestore.indexes.json"

// MissingIndexError is what production Firestore's FailedPrecondition
// means for these queries: an index is missing. It names the index and the
// command that creates it.
type MissingIndexError struct {
	Index   string // human description
	Command string // gcloud command creating it
	Err     error
}

func (e *MissingIndexError) Error() string {
	return fmt.Sprintf("Firestore has no index for this query: it needs %s. Create it with:\n  %s\nor deploy %s (firebase deploy --only firestore:indexes). Firestore said: %v",
		e.Index, e.Command, IndexesFile, e.Err)
}

func (e *MissingIndexError) Unwrap() error { return e.Err }

// indexError turns FailedPrecondition into a MissingIndexError for the
// query of sel ordered by field (descending).
func indexError(err error, sel Selection, field string) error {
	if status.Code(err) != codes.FailedPrecondition {
		return fmt.Errorf("query messages by %s: %w", field, err)
	}
	var e *MissingIndexError
	if errors.As(err, &e) {
		return err
	}
	switch {
	case sel.ThreadID != "":
		e = &MissingIndexError{
			Index:   fmt.Sprintf("the single-field index on messages.%s (collection scope)", field),
			Command: fmt.Sprintf("gcloud firestore indexes fields update %s --collection-group=messages --index=order=descending,query-scope=collection", field),
		}
	case sel.AccountID != "":
		e = &MissingIndexError{
			Index: fmt.Sprintf("the composite index on collection group messages (accountId ASC, %s DESC)", field),
			Command: fmt.Sprintf("gcloud firestore indexes composite create --collection-group=messages --query-scope=COLLECTION_GROUP "+
				"--field-config=field-path=accountId,order=ascending --field-config=field-path=%s,order=descending", field),
		}
	default:
		e = &MissingIndexError{
			Index:   fmt.Sprintf("the collection-group index on messages.%s DESC", field),
			Command: fmt.Sprintf("gcloud firestore indexes fields update %s --collection-group=messages --index=order=descending,query-scope=collection-group", field),
		}
	}
	e.Err = err
	return e
}
