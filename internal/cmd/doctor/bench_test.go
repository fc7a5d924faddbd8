package doctor_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/wactl/wactl/internal/cmd/doctor"
	"github.com/wactl/wactl/internal/iostreams"
	"github.com/wactl/wactl/pkg/sessions"
)

// BenchmarkOffline is `wactl doctor --offline` on a host with a sessions
// directory and an embedded lease: the target is under 300 ms.
func BenchmarkOffline(b *testing.B) {
	dataDir := b.TempDir()
	if _, err := sessions.Open(filepath.Join(dataDir, "sessions"), sessions.Options{}); err != nil {
		b.Fatal(err)
	}
	vars := map[string]string{"STATE_DIRECTORY": dataDir, "INSTANCE_ID": "host-a"}
	for i := 0; i < b.N; i++ {
		ios, _, _, _ := iostreams.Test()
		env := loadEnvTB(b, vars)
		_ = doctor.Run(context.Background(), &doctor.Options{IO: ios, Env: env, Offline: true})
	}
}
