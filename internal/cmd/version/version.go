// Package version implements `wactl version`.
package version

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/wactl/wactl/internal/buildinfo"
	"github.com/wactl/wactl/internal/cmdutil"
	"github.com/wactl/wactl/internal/iostreams"
)

// Options of `wactl version`.
type Options struct {
	IO   *iostreams.IOStreams
	JSON bool
	Info buildinfo.Info
}

func New(f *cmdutil.Factory) *cobra.Command {
	o := &Options{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and build date",
		Args:  cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Info = buildinfo.Get()
			return Run(o)
		},
	}
	cmd.Flags().BoolVar(&o.JSON, "json", false, "print JSON")
	return cmd
}

// Run prints the version.
func Run(o *Options) error {
	if o.JSON {
		return cmdutil.WriteJSON(o.IO.Out, o.Info)
	}
	_, err := fmt.Fprintf(o.IO.Out, "wactl %s (commit %s, built %s, %s)\n",
		o.Info.Version, o.Info.Commit, orUnknown(o.Info.Date), o.Info.GoVersion)
	return err
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
