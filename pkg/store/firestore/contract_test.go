package firestore_test

import (
	"context"
	"testing"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/pkg/fsclient"
	"github.com/wactl/wactl/pkg/store"
	"github.com/wactl/wactl/pkg/store/firestore"
	"github.com/wactl/wactl/pkg/store/storetest"
)

// openEmu opens the Firestore store on the shared emulator; reuse names an
// earlier project to open again.
func openEmu(t *testing.T, env storetest.Env) (store.Store, string) {
	t.Helper()
	project := env.Reuse
	if project == "" {
		project = fsemu.ProjectID(t)
	}
	s, err := firestore.Open(context.Background(), firestore.Options{
		Connection:   fsclient.Options{ProjectID: project, EmulatorHost: fsemu.Host(t)},
		StrongDedupe: env.StrongDedupe,
		Now:          env.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, project
}

func TestContract(t *testing.T) {
	storetest.Run(t, openEmu)
}
