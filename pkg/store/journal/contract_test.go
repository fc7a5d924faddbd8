package journal_test

import (
	"testing"

	"github.com/wactl/wactl/pkg/store/storetest"
)

// The journaled store is what the daemon uses in Firestore mode: it must
// keep the whole contract while Firestore is reachable.
func TestContract(t *testing.T) {
	storetest.Run(t, openJournaled)
}
