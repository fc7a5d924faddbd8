package daemon_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wactl/wactl/internal/watest"
	"github.com/wactl/wactl/pkg/store"
)

// accountRefusingStore refuses PutAccount while failing is set.
type accountRefusingStore struct {
	store.Store
	failing atomic.Bool
	refused atomic.Int64
}

func (f *accountRefusingStore) PutAccount(ctx context.Context, a store.Account) error {
	if f.failing.Load() {
		f.refused.Add(1)
		return errors.New("injected store outage")
	}
	return f.Store.PutAccount(ctx, a)
}

// TestAccountStatusReachesStoreAfterOutage: the account connects while the
// store refuses account writes; once the store is back, the account
// document says connected without any further event. (On ca70e15 the
// failed write was dropped and the document kept no status.)
func TestAccountStatusReachesStoreAfterOutage(t *testing.T) {
	r, accts := newRig(t, "40711000071")
	fs := &accountRefusingStore{Store: r.st}
	fs.failing.Store(true)
	run := r.start("host-a", fs)
	run.waitHealth(t, "connected", connected(1))
	watest.Eventually(t, 10*time.Second, "a refused status write", func() bool { return fs.refused.Load() > 0 })
	time.Sleep(200 * time.Millisecond) // the connected state's write is refused too
	fs.failing.Store(false)
	watest.Eventually(t, 10*time.Second, "account document says connected", func() bool {
		doc, err := r.st.GetAccount(context.Background(), accts[0].ID)
		return err == nil && doc.Status == "connected"
	})
}
