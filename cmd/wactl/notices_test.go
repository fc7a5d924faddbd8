package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Every module linked into the binary is named in THIRD_PARTY_NOTICES.md
// with a licence, so a dependency added without `make notices` fails here.
func TestThirdPartyNoticesListEveryLinkedModule(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{with .Module}}{{if not .Main}}{{.Path}}{{end}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	notices, err := os.ReadFile("../../THIRD_PARTY_NOTICES.md")
	if err != nil {
		t.Fatalf("%v (run `make notices`)", err)
	}
	text := string(notices)
	seen := map[string]bool{}
	for _, mod := range strings.Fields(string(out)) {
		if seen[mod] {
			continue
		}
		seen[mod] = true
		if !strings.Contains(text, "| `"+mod+"`") && !strings.Contains(text, "| `"+mod+"/") {
			t.Errorf("module %s is linked into wactl but not in THIRD_PARTY_NOTICES.md: run `make notices`", mod)
		}
	}
	if len(seen) < 10 {
		t.Fatalf("go list found only %d modules: %q", len(seen), out)
	}
	if strings.Contains(text, "| Unknown |") {
		t.Error("THIRD_PARTY_NOTICES.md has a module with an unknown licence")
	}
}
