package accounts_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wactl/wactl/internal/cmd/accounts"
	"github.com/wactl/wactl/internal/iostreams"
	"github.com/wactl/wactl/internal/iostreams/tablecheck"
	"github.com/wactl/wactl/pkg/sessions"
)

// On an 80-column colour terminal the table fits (it was 117+ columns):
// the ids stay whole, the columns line up, and what was left out is said.
func TestListFits80ColumnsInColour(t *testing.T) {
	dataDir := t.TempDir()
	sess, err := sessions.Open(filepath.Join(dataDir, "sessions"), sessions.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{"account_prod_0123456789abcdef0123456789abcdef", "account_prod_fedcba9876543210fedcba9876543210"}
	for i, id := range ids {
		if _, err := sess.Create(sessions.NewAccount{ID: id, Name: "Magazin Central Bucuresti — vanzari " + string(rune('A'+i)), Phone: "+4075500000" + string(rune('1'+i))}); err != nil {
			t.Fatal(err)
		}
	}
	ios, _, out, _ := iostreams.Test()
	ios.SetTTY(false, true, true)
	ios.SetTerminalSize(80, 24)
	if err := accounts.RunList(context.Background(), &accounts.ListOptions{IO: ios, Load: loader(dataDir)}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "\x1b[") {
		t.Fatalf("no colour: %q", out)
	}
	t.Logf("\n%s", out)
	for _, p := range tablecheck.Problems(out.String(), 80, "ACCOUNT") {
		t.Error(p)
	}
	for _, id := range ids {
		if !strings.Contains(out.String(), id+" ") {
			t.Errorf("id %s not whole", id)
		}
	}
}
