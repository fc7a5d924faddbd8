// Package configcmd implements `wactl config show` and `wactl config validate`.
package configcmd

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/wactl/wactl/internal/cmdutil"
	"github.com/wactl/wactl/internal/iostreams"
	"github.com/wactl/wactl/pkg/config"
)

func New(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show or check the effective configuration",
	}
	cmd.AddCommand(newShow(f), newValidate(f))
	return cmd
}

// Options of `config show` and `config validate`.
type Options struct {
	IO   *iostreams.IOStreams
	JSON bool
	Load func() (*config.Loaded, error)
}

func newShow(f *cmdutil.Factory) *cobra.Command {
	o := &Options{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Print every key's effective value and where it came from",
		Long: `Print every configuration key with its effective value and its source:
default, file, env (naming the variable), flag, or derived. Secrets are
redacted. Invalid values are shown too, and the problems listed after.`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Load = func() (*config.Loaded, error) { return f.Config(cmd) }
			return RunShow(o)
		},
	}
	cmd.Flags().BoolVar(&o.JSON, "json", false, "print JSON")
	return cmd
}

func newValidate(f *cmdutil.Factory) *cobra.Command {
	o := &Options{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check the configuration and list every problem",
		Long: `Load the configuration exactly as 'wactl serve' would and list every
problem found, each naming the key, where its value came from, and the fix.
Warnings (a secret in a file others can read, an empty secret file, no
reader allowlist) are printed too but do not make it fail.
Run it before restarting the service after editing the file.`,
		Args: cmdutil.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Load = func() (*config.Loaded, error) { return f.Config(cmd) }
			return RunValidate(o)
		},
	}
	cmd.Flags().BoolVar(&o.JSON, "json", false, "print JSON")
	return cmd
}

type showJSON struct {
	File     string         `json:"file"`
	Entries  []config.Entry `json:"entries"`
	Problems []string       `json:"problems"`
}

// RunShow prints the effective configuration.
func RunShow(o *Options) error {
	l, err := o.Load()
	var pe *config.ProblemsError
	if err != nil && !errors.As(err, &pe) {
		return err
	}
	if o.JSON {
		out := showJSON{File: l.File, Entries: l.Entries(), Problems: problemStrings(pe)}
		if err := cmdutil.WriteJSON(o.IO.Out, out); err != nil {
			return err
		}
	} else {
		st := o.IO.StyleOut()
		file := l.File
		if file == "" {
			file = "(none)"
		}
		fmt.Fprintf(o.IO.ErrOut, "config file: %s\n", file)
		var rows [][]string
		for _, e := range l.Entries() {
			src := string(e.Source)
			if e.Detail != "" {
				src += " (" + e.Detail + ")"
			}
			rows = append(rows, []string{e.Key, showValue(e.Value), st.Dim(src)})
		}
		// On a terminal, values and sources wrap under themselves: the key
		// column stays whole and no line runs past the edge.
		width := 0
		if o.IO.IsStdoutTTY() {
			width = o.IO.TerminalWidth()
		}
		cols := []iostreams.Column{{Header: "KEY"}, {Header: "VALUE", Wrap: true, Break: true}, {Header: "SOURCE", Wrap: true}}
		if _, err := st.FitTable(o.IO.Out, width, cols, rows); err != nil {
			return err
		}
	}
	return err
}

// RunValidate reports whether the configuration is valid.
func RunValidate(o *Options) error {
	l, err := o.Load()
	var pe *config.ProblemsError
	if err != nil && !errors.As(err, &pe) {
		return err
	}
	warnings := []string{}
	for _, w := range l.Warnings {
		warnings = append(warnings, w.String())
	}
	if o.JSON {
		out := map[string]any{"valid": pe == nil, "file": l.File, "problems": problemStrings(pe), "warnings": warnings}
		if werr := cmdutil.WriteJSON(o.IO.Out, out); werr != nil {
			return werr
		}
		if pe != nil {
			return &cmdutil.ExitError{Code: cmdutil.ExitConfig, Err: pe, Silent: true}
		}
		return nil
	}
	for _, w := range warnings {
		fmt.Fprintf(o.IO.ErrOut, "%s warning: %s\n", o.IO.StyleErr().Warn(), w)
	}
	if pe != nil {
		return pe
	}
	file := l.File
	if file == "" {
		file = "no file, defaults and environment only"
	}
	fmt.Fprintf(o.IO.Out, "%s configuration is valid (%s)\n", o.IO.StyleOut().OK(), file)
	return nil
}

func problemStrings(pe *config.ProblemsError) []string {
	out := []string{}
	if pe != nil {
		for _, p := range pe.Problems {
			out = append(out, p.String())
		}
	}
	return out
}

func showValue(v any) string {
	s := fmt.Sprint(v)
	if s == "" {
		return `""`
	}
	return s
}
