// Package fsclient opens Firestore clients the way every wactl component
// needs them: the emulator at an explicit address (not only through the
// process-wide FIRESTORE_EMULATOR_HOST variable, so one process can talk to two
// emulators in tests), or production with Application Default Credentials or a
// service-account file.
package fsclient

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"

	"cloud.google.com/go/firestore"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Options selects a Firestore database.
type Options struct {
	ProjectID       string // required
	Database        string // "" or "(default)" for the default database
	EmulatorHost    string // host:port of an emulator; empty for production
	CredentialsFile string // service-account JSON; empty for ADC
}

// New opens a client. Errors name what is missing and how to provide it.
func New(ctx context.Context, o Options) (*firestore.Client, error) {
	if o.ProjectID == "" {
		return nil, errors.New("firestore: no project id: set store.firestore.project_id (or GOOGLE_CLOUD_PROJECT)")
	}
	db := o.Database
	if db == "" {
		db = firestore.DefaultDatabaseID
	}
	var opts []option.ClientOption
	if o.EmulatorHost != "" {
		conn, err := grpc.NewClient("passthrough:///"+strings.TrimPrefix(o.EmulatorHost, "http://"),
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithPerRPCCredentials(emulatorCreds{}),
			grpc.WithDefaultCallOptions(
				grpc.MaxCallRecvMsgSize(math.MaxInt32),
				grpc.MaxCallSendMsgSize(math.MaxInt32),
			))
		if err != nil {
			return nil, fmt.Errorf("firestore emulator %s: %w", o.EmulatorHost, err)
		}
		opts = append(opts, option.WithGRPCConn(conn))
	} else if o.CredentialsFile != "" {
		if _, err := os.ReadFile(o.CredentialsFile); err != nil {
			return nil, fmt.Errorf("firestore credentials: %w (check store.firestore.credentials_file / GOOGLE_APPLICATION_CREDENTIALS)", err)
		}
		opts = append(opts, option.WithAuthCredentialsFile(option.ServiceAccount, o.CredentialsFile))
	}
	// The client library honours FIRESTORE_EMULATOR_HOST itself; when the
	// caller chose an address explicitly that must win, so the variable is
	// not consulted here: WithGRPCConn above already points at the emulator.
	c, err := firestore.NewClientWithDatabase(ctx, o.ProjectID, db, opts...)
	if err != nil {
		hint := ""
		if o.EmulatorHost == "" && o.CredentialsFile == "" {
			hint = " (give a service-account file with store.firestore.credentials_file or GOOGLE_APPLICATION_CREDENTIALS, or set store.firestore.emulator_host for an emulator)"
		}
		return nil, fmt.Errorf("firestore client (project %s): %w%s", o.ProjectID, err, hint)
	}
	return c, nil
}

// emulatorCreds sends the token the emulator treats as an administrator,
// bypassing security rules, exactly as the client library does for
// FIRESTORE_EMULATOR_HOST.
type emulatorCreds struct{}

func (emulatorCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer owner"}, nil
}

func (emulatorCreds) RequireTransportSecurity() bool { return false }
