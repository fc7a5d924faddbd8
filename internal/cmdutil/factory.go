// Package cmdutil is what every wactl command shares: the factory that gives
// commands their streams, configuration and logger, exit codes, and output
// helpers.
package cmdutil

import (
	"log/slog"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.mau.fi/whatsmeow"

	"github.com/wactl/wactl/internal/iostreams"
	"github.com/wactl/wactl/internal/logging"
	"github.com/wactl/wactl/pkg/config"
)

// Factory is built once in main and passed to every command constructor.
type Factory struct {
	IO *iostreams.IOStreams
	// ConfigOptions are the loader's inputs (tests inject env and files).
	ConfigOptions config.LoadOptions
	// ConfigureWAClient is called on every whatsmeow client before it
	// connects. Only tests set it (to reach the fake WhatsApp server); the
	// shipped binary leaves it nil, so no environment variable can redirect
	// its WhatsApp traffic.
	ConfigureWAClient func(*whatsmeow.Client)
	// ProcessLogger is true in a real wactl process (not in tests that run
	// commands in-process): the logger a command builds then also becomes
	// the process default, so the standard log package goes through it.
	ProcessLogger bool
}

// flagKeys maps the flags that set configuration keys to those keys. A
// command that adds such a flag registers it with BindConfigFlag.
var flagKeys = map[string]string{
	"data-dir":    "data_dir",
	"instance-id": "instance_id",
	"log-level":   "log.level",
	"log-format":  "log.format",
}

// BindConfigFlag declares that flag name sets configuration key key.
func BindConfigFlag(name, key string) { flagKeys[name] = key }

// Config loads the configuration with the flags the user gave cmd.
func (f *Factory) Config(cmd *cobra.Command) (*config.Loaded, error) {
	o := f.ConfigOptions
	o.Flags = allFlags(cmd)
	o.FlagKeys = flagKeys
	lookup := o.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	if file, _ := cmd.Flags().GetString("config"); file != "" {
		o.ConfigFile = file
	} else if file, ok := lookup("WACTL_CONFIG"); ok && file != "" {
		o.ConfigFile = file
	}
	return config.Load(o)
}

// allFlags returns cmd's local and inherited flags in one set.
func allFlags(cmd *cobra.Command) *pflag.FlagSet {
	fs := pflag.NewFlagSet(cmd.Name(), pflag.ContinueOnError)
	fs.AddFlagSet(cmd.Flags())
	fs.AddFlagSet(cmd.InheritedFlags())
	return fs
}

// Logger builds the slog logger for a loaded configuration; logs go to
// stderr.
func (f *Factory) Logger(cfg *config.Config) (*slog.Logger, error) {
	l, err := logging.New(f.IO.ErrOut, logging.Options{
		Level:   cfg.Log.Level,
		Format:  cfg.Log.Format,
		Journal: logging.StderrIsJournal(),
	})
	if err == nil && f.ProcessLogger {
		logging.Install(l)
	}
	return l, err
}
