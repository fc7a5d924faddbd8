package sessions_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"github.com/wactl/wactl/internal/pgtest"
	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/wasock"
	"github.com/wactl/wactl/internal/watest"
	"github.com/wactl/wactl/pkg/sessions"
)

// BenchmarkDeviceStorePerMessage is the device store's cost per inbound
// message: the real whatsmeow client decrypts messages from the fake
// server (Signal session load and store, identity check, the decrypted
// event buffer) and acknowledges them, on each store in the same run. The
// fake server and the client's network path are the same for both, so the
// difference is the store's.
//
//	go test ./pkg/sessions -run '^$' -bench DeviceStorePerMessage -benchtime 500x
func BenchmarkDeviceStorePerMessage(b *testing.B) {
	for _, kind := range []string{sessions.StoreKindSQLite, sessions.StoreKindPostgres} {
		b.Run(kind, func(b *testing.B) {
			srv := wafake.Start(b)
			opts := sessions.Options{}
			if kind == sessions.StoreKindPostgres {
				opts.Postgres = &sessions.PostgresOptions{DSN: pgtest.DSN(b)}
			}
			st, err := sessions.Open(filepath.Join(b.TempDir(), "sessions"), opts)
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			acct := watest.Pair(b, srv, st, "40736000001")
			dev, err := st.OpenDevice(context.Background(), acct.ID, sessions.DeviceOptions{})
			if err != nil {
				b.Fatal(err)
			}
			defer dev.Close()
			cli := srv.NewClient(dev.Store, nil)
			got := make(chan struct{}, 1024)
			cli.AddEventHandler(func(e any) {
				if _, ok := e.(*events.Message); ok {
					got <- struct{}{}
				}
			})
			if err := cli.Connect(); err != nil {
				b.Fatal(err)
			}
			defer wasock.Close(cli)
			watest.Eventually(b, 10*time.Second, "connected", cli.IsLoggedIn)
			from := types.NewJID("40700000044", types.DefaultUserServer)
			send := func(i int) {
				if _, err := srv.SendFromPeer(context.Background(), from, acct.Device.ToNonAD(), &waE2E.Message{Conversation: proto.String(fmt.Sprint("m", i))}); err != nil {
					b.Fatal(err)
				}
			}
			send(-1) // the first message sets the Signal session up
			<-got
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				send(i)
				select {
				case <-got:
				case <-time.After(20 * time.Second):
					b.Fatalf("message %d not decrypted", i)
				}
			}
		})
	}
}
