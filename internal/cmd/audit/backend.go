// Package audit implements `wactl audit duplicates`.
package audit

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/wactl/wactl/internal/cmdutil"
	"github.com/wactl/wactl/pkg/audit"
)

// OpenFromConfig returns an opener of the store the configuration names;
// `wactl cleanup` uses it too.
func OpenFromConfig(f *cmdutil.Factory, cmd *cobra.Command) func(context.Context) (audit.Backend, error) {
	return func(ctx context.Context) (audit.Backend, error) {
		l, err := f.Config(cmd)
		if err != nil {
			return nil, err
		}
		c := l.Config
		return audit.Open(ctx, audit.BackendOptions{
			Backend: c.Store.Backend, Path: c.Store.Path,
			ProjectID: c.Store.Firestore.ProjectID, Database: c.Store.Firestore.Database,
			EmulatorHost: c.Store.Firestore.EmulatorHost, CredentialsFile: c.Store.Firestore.CredentialsFile,
		})
	}
}
