// Command gendocs writes wactl's man pages and shell completions from the
// command tree itself, so the package's documentation cannot drift from
// --help. Used by tools/package.sh:
//
//	go run ./tools/gendocs -out DIR
//
// writes DIR/man/man1/*.1 and DIR/completions/{wactl.bash,_wactl,wactl.fish}.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/wactl/wactl/internal/cmd/root"
	"github.com/wactl/wactl/internal/cmdutil"
	"github.com/wactl/wactl/internal/iostreams"
)

func main() {
	out := flag.String("out", "", "directory to write man/ and completions/ into")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "gendocs: -out DIR is required")
		os.Exit(2)
	}
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "gendocs:", err)
		os.Exit(1)
	}
}

func run(out string) error {
	cmd := root.New(&cmdutil.Factory{IO: iostreams.System()})
	cmd.DisableAutoGenTag = true // a date in the page would make builds differ
	man := filepath.Join(out, "man", "man1")
	comp := filepath.Join(out, "completions")
	for _, d := range []string{man, comp} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	hdr := &doc.GenManHeader{Title: "WACTL", Section: "1", Source: "wactl", Manual: "wactl manual"}
	if err := doc.GenManTree(cmd, hdr, man); err != nil {
		return fmt.Errorf("man pages: %w", err)
	}
	for name, gen := range map[string]func(*cobra.Command, string) error{
		"wactl.bash": func(c *cobra.Command, f string) error { return c.GenBashCompletionFileV2(f, true) },
		"_wactl":     func(c *cobra.Command, f string) error { return c.GenZshCompletionFile(f) },
		"wactl.fish": func(c *cobra.Command, f string) error { return c.GenFishCompletionFile(f, true) },
	} {
		if err := gen(cmd, filepath.Join(comp, name)); err != nil {
			return fmt.Errorf("completion %s: %w", name, err)
		}
	}
	return nil
}
