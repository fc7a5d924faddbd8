package audit

import (
	"context"
	"fmt"

	"github.com/wactl/wactl/pkg/fsclient"
)

// BackendOptions selects the store to audit, as store.* configures it.
type BackendOptions struct {
	Backend         string // embedded | firestore
	Path            string // embedded database file
	ProjectID       string
	Database        string
	EmulatorHost    string
	CredentialsFile string
}

// Open opens the configured store for auditing; Close releases it.
func Open(ctx context.Context, o BackendOptions) (Backend, error) {
	switch o.Backend {
	case "embedded", "":
		return OpenEmbedded(ctx, o.Path)
	case "firestore":
		c, err := fsclient.New(ctx, fsclient.Options{ProjectID: o.ProjectID, Database: o.Database,
			EmulatorHost: o.EmulatorHost, CredentialsFile: o.CredentialsFile})
		if err != nil {
			return nil, err
		}
		f := NewFirestore(c)
		f.close = c.Close
		return f, nil
	}
	return nil, fmt.Errorf("unknown store backend %q: set store.backend to embedded or firestore", o.Backend)
}
