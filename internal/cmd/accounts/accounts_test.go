package accounts_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wactl/wactl/internal/cmd/accounts"
	"github.com/wactl/wactl/internal/cmdutil"
	"github.com/wactl/wactl/internal/iostreams"
	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/watest"
	"github.com/wactl/wactl/pkg/config"
	"github.com/wactl/wactl/pkg/sessions"
)

func loader(dataDir string) func() (*config.Loaded, error) {
	return func() (*config.Loaded, error) {
		return config.Load(config.LoadOptions{SearchPaths: []string{}, LookupEnv: func(k string) (string, bool) {
			if k == "STATE_DIRECTORY" {
				return dataDir, true
			}
			return "", false
		}})
	}
}

func TestListAndRemove(t *testing.T) {
	dataDir := t.TempDir()
	sess, err := sessions.Open(filepath.Join(dataDir, "sessions"), sessions.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := wafake.Start(t)
	paired := watest.Pair(t, srv, sess, "40755000001")
	const unpaired = "account_prod_0123456789abcdef0123456789abcdef"
	if _, err := sess.Create(sessions.NewAccount{ID: unpaired, Name: "New", Phone: "+40755000002"}); err != nil {
		t.Fatal(err)
	}

	ios, _, out, _ := iostreams.Test()
	if err := accounts.RunList(context.Background(), &accounts.ListOptions{IO: ios, Load: loader(dataDir)}); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Accounts []accounts.Row `json:"accounts"`
		Count    int            `json:"count"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("piped output must be JSON: %v\n%s", err, out)
	}
	sessionOf := map[string]string{}
	for _, r := range got.Accounts {
		sessionOf[r.ID] = r.Session
	}
	if got.Count != 2 || sessionOf[paired.ID] != "paired" || sessionOf[unpaired] == "paired" {
		t.Fatalf("%+v", got)
	}

	// The table on a terminal masks phone numbers.
	ios, _, out, _ = iostreams.Test()
	ios.SetTTY(false, true, false)
	accounts.RunList(context.Background(), &accounts.ListOptions{IO: ios, Load: loader(dataDir)})
	if !strings.Contains(out.String(), "ACCOUNT") || strings.Contains(out.String(), "+40755000001") {
		t.Fatalf("table:\n%s", out)
	}

	// Removing needs confirmation; without a terminal, --yes.
	ios, _, _, _ = iostreams.Test()
	err = accounts.RunRemove(context.Background(), &accounts.RemoveOptions{IO: ios, Load: loader(dataDir), ID: paired.ID})
	var fe *cmdutil.FlagError
	if !errors.As(err, &fe) {
		t.Fatalf("want a usage error without --yes, got %v", err)
	}
	// On a terminal, "n" keeps it.
	ios, in, _, _ := iostreams.Test()
	ios.SetTTY(true, false, true)
	in.WriteString("n\n")
	err = accounts.RunRemove(context.Background(), &accounts.RemoveOptions{IO: ios, Load: loader(dataDir), ID: paired.ID})
	if err == nil {
		t.Fatal("declined removal succeeded")
	}
	if _, err := sess.Get(paired.ID); err != nil {
		t.Fatalf("declined removal removed: %v", err)
	}
	ios, _, out, _ = iostreams.Test()
	if err := accounts.RunRemove(context.Background(), &accounts.RemoveOptions{IO: ios, Load: loader(dataDir), ID: paired.ID, Yes: true, JSON: true}); err != nil {
		t.Fatal(err)
	}
	var res struct{ MovedTo string }
	json.Unmarshal(out.Bytes(), &res)
	if _, err := os.Stat(filepath.Join(res.MovedTo, "whatsmeow.db")); err != nil {
		t.Fatalf("session not kept under removed/: %v (%s)", err, out)
	}
	if _, err := sess.Get(paired.ID); !errors.Is(err, sessions.ErrNoAccount) {
		t.Fatalf("account still present: %v", err)
	}
	// Unknown and invalid ids.
	err = accounts.RunRemove(context.Background(), &accounts.RemoveOptions{IO: ios, Load: loader(dataDir), ID: paired.ID, Yes: true})
	if err == nil || !strings.Contains(err.Error(), "no account") {
		t.Fatalf("second removal: %v", err)
	}
	err = accounts.RunRemove(context.Background(), &accounts.RemoveOptions{IO: ios, Load: loader(dataDir), ID: "../etc", Yes: true})
	if !errors.As(err, &fe) {
		t.Fatalf("bad id: %v", err)
	}
}
