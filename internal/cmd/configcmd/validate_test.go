package configcmd

import (
	"encoding/json"
	"errors"
	"io/fs"
	"strings"
	"testing"

	"github.com/wactl/wactl/internal/iostreams"
	"github.com/wactl/wactl/pkg/config"
)

func loadWith(env map[string]string, files map[string]string) func() (*config.Loaded, error) {
	return func() (*config.Loaded, error) {
		return config.Load(config.LoadOptions{
			LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
			ReadFile: func(p string) ([]byte, error) {
				if s, ok := files[p]; ok {
					return []byte(s), nil
				}
				return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
			},
			SearchPaths: []string{"/etc/wactl/config.yaml"},
			Getwd:       func() (string, error) { return "/work", nil },
			Hostname:    func() (string, error) { return "web-1", nil },
			MachineID:   func() (string, error) { return "", nil },
		})
	}
}

// TestValidatePrintsWarningsAndStaysValid: issue 16 items 5 and 6 — an
// empty token file and a missing reader allowlist are warned about, and
// the configuration is still valid (exit 0).
func TestValidatePrintsWarningsAndStaysValid(t *testing.T) {
	io, _, out, errOut := iostreams.Test()
	o := &Options{IO: io, Load: loadWith(map[string]string{
		"WACTL_API_FIREBASE_PROJECT_ID": "shop", "WACTL_API_SERVICE_TOKEN_FILE": "/run/creds/token",
	}, map[string]string{"/run/creds/token": ""})}
	if err := RunValidate(o); err != nil {
		t.Fatalf("warnings must not fail validate: %v", err)
	}
	if !strings.Contains(out.String(), "configuration is valid") {
		t.Fatalf("stdout %q", out)
	}
	for _, want := range []string{"warning: api.service_token (WACTL_API_SERVICE_TOKEN_FILE): /run/creds/token is empty", "no reader allowlist"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	io, _, out, _ = iostreams.Test()
	o.IO, o.JSON = io, true
	if err := RunValidate(o); err != nil {
		t.Fatal(err)
	}
	var m struct {
		Valid    bool
		Warnings []string
	}
	if err := json.Unmarshal(out.Bytes(), &m); err != nil || !m.Valid || len(m.Warnings) != 2 {
		t.Fatalf("json %s (%v)", out, err)
	}
}

// TestValidateShortTokenFailsAndUnknownKeyOnce: a short service token is a
// problem; an unknown key is listed once.
func TestValidateShortTokenFailsAndUnknownKeyOnce(t *testing.T) {
	io, _, _, _ := iostreams.Test()
	o := &Options{IO: io, Load: loadWith(map[string]string{"WACTL_API_SERVICE_TOKEN": "short"},
		map[string]string{"/etc/wactl/config.yaml": "colour: blue\n"})}
	err := RunValidate(o)
	var pe *config.ProblemsError
	if !errors.As(err, &pe) {
		t.Fatalf("want problems, got %v", err)
	}
	msg := err.Error()
	if strings.Count(msg, "colour") != 1 || !strings.Contains(msg, "api.service_token: is 5 characters") || strings.Contains(msg, "short") {
		t.Fatalf("problems:\n%s", msg)
	}
}
