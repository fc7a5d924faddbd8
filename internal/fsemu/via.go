package fsemu

import (
	"context"
	"testing"

	"cloud.google.com/go/firestore"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// NewClientVia is NewClient on a connection with extra dial options: tests
// put interceptors there to count calls or to lose an answer on the way
// back, while the emulator still does the work.
func NewClientVia(t testing.TB, dial ...grpc.DialOption) (*firestore.Client, string) {
	t.Helper()
	project := ProjectID(t)
	opts := append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(ownerToken{})}, dial...)
	conn, err := grpc.NewClient("passthrough:///"+Host(t), opts...)
	if err != nil {
		t.Fatal(err)
	}
	c, err := firestore.NewClientWithDatabase(context.Background(), project, firestore.DefaultDatabaseID, option.WithGRPCConn(conn))
	if err != nil {
		conn.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, project
}

// ownerToken is the token the emulator treats as an administrator (what
// the client library sends for FIRESTORE_EMULATOR_HOST).
type ownerToken struct{}

func (ownerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer owner"}, nil
}
func (ownerToken) RequireTransportSecurity() bool { return false }
