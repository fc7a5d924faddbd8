package fsclient_test

import (
	"context"
	"strings"
	"testing"

	"github.com/wactl/wactl/pkg/fsclient"
)

// TestErrorsNameTheFix: a missing project or credential is an immediate
// error that says what to set, never a hang.
func TestErrorsNameTheFix(t *testing.T) {
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "")
	t.Setenv("FIRESTORE_EMULATOR_HOST", "")
	t.Setenv("HOME", t.TempDir()) // no gcloud application-default credentials
	ctx := context.Background()
	for _, tc := range []struct {
		o    fsclient.Options
		want string
	}{
		{fsclient.Options{}, "store.firestore.project_id"},
		{fsclient.Options{ProjectID: "p", CredentialsFile: "/nonexistent.json"}, "GOOGLE_APPLICATION_CREDENTIALS"},
	} {
		_, err := fsclient.New(ctx, tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want a hint naming %s", tc.o, err, tc.want)
		}
	}
}
