package doctor

import (
	"context"
	"testing"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/pkg/fsclient"
	"github.com/wactl/wactl/pkg/lock"
)

func firestoreEnv(t *testing.T) (*Env, *firestore.Client) {
	client, project := fsemu.NewClient(t)
	env := testEnv(t, map[string]string{"WACTL_STORE_BACKEND": "firestore", "GOOGLE_CLOUD_PROJECT": project,
		"FIRESTORE_EMULATOR_HOST": fsemu.Host(t)})
	env.Offline = false
	env.Firestore = func(context.Context) (*firestore.Client, error) { return client, nil }
	return env, client
}

// TestLeaseHeldByNodeInstance: the old Node service's lease document (its
// five fields, numbers in ms) held by another instance.
func TestLeaseHeldByNodeInstance(t *testing.T) {
	t.Parallel()
	env, client := firestoreEnv(t)
	now := time.Now()
	_, err := client.Doc(lock.DefaultDocPath).Set(context.Background(), map[string]any{
		"holderInstanceId": "web-old-7f3a", "leaseUntil": float64(now.Add(90 * time.Second).UnixMilli()),
		"acquiredAt": float64(now.UnixMilli()), "updatedAt": float64(now.UnixMilli()), "previousHolder": nil})
	if err != nil {
		t.Fatal(err)
	}
	r := runCheck(t, env, "lease")
	wantStatus(t, r, Warn, "held by another instance web-old-7f3a")
	if evidence(r, "lockStatus") != "held_by_other" || evidence(r, "holder") != "web-old-7f3a" {
		t.Fatal(r.Evidence)
	}
}

func TestLeaseFreeEmbedded(t *testing.T) {
	t.Parallel()
	env := testEnv(t, nil)
	r := runCheck(t, env, "lease")
	wantStatus(t, r, OK, "lease free")
}

func TestClockSkew(t *testing.T) {
	t.Parallel()
	env, _ := firestoreEnv(t)
	r := runCheck(t, env, "lease.clock")
	wantStatus(t, r, OK, "clock within")

	env, _ = firestoreEnv(t)
	env.ClockOffset = 12 * time.Second
	r = runCheck(t, env, "lease.clock")
	wantStatus(t, r, Fail, "off Firestore's")
	if fixCommands(r) == "" {
		t.Fatal("no fix")
	}

	env, _ = firestoreEnv(t)
	env.ClockOffset = -2 * time.Second
	wantStatus(t, runCheck(t, env, "lease.clock"), Warn, "-2")
}

func TestStoreFirestoreReachable(t *testing.T) {
	t.Parallel()
	env, _ := firestoreEnv(t)
	r := runCheck(t, env, "store.firestore")
	wantStatus(t, r, OK, "reachable")
}

func TestStoreFirestoreUnreachable(t *testing.T) {
	t.Parallel()
	env := testEnv(t, map[string]string{"WACTL_STORE_BACKEND": "firestore", "GOOGLE_CLOUD_PROJECT": "p", "FIRESTORE_EMULATOR_HOST": "127.0.0.1:1"})
	env.Offline = false
	env.Firestore = func(ctx context.Context) (*firestore.Client, error) {
		return fsclient.New(ctx, fsclient.Options{ProjectID: "p", EmulatorHost: "127.0.0.1:1"})
	}
	r := runCheck(t, env, "store.firestore")
	wantStatus(t, r, Fail, "unreachable")
}

// TestLeaseWactlHolderForm: a wactl holder's lease names it "wactl:<id>"
// (issue 15.1: the old service never takes that for its own); doctor
// beside it still says "held by this instance", and names another wactl
// holder in the same form.
func TestLeaseWactlHolderForm(t *testing.T) {
	t.Parallel()
	env, client := firestoreEnv(t)
	id := env.Config.InstanceID
	active := make(chan struct{}, 1)
	hold := func(instance, host, dataDir string) context.CancelFunc {
		l, err := lock.NewFirestore(lock.FirestoreOptions{Client: client, InstanceID: instance, Host: host, DataDir: dataDir,
			Timing:    lock.Timing{TTL: 4 * time.Second, Renew: time.Second, SafetyMargin: time.Second, Retry: 200 * time.Millisecond},
			Callbacks: lock.Callbacks{OnActive: func(int64) { active <- struct{}{} }}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { _ = l.Run(ctx); close(done) }()
		select {
		case <-active:
		case <-time.After(10 * time.Second):
			t.Fatal("holder not ACTIVE")
		}
		return func() { cancel(); <-done }
	}
	stop := hold(id, env.Hostname, env.Config.DataDir)
	r := runCheck(t, env, "lease")
	wantStatus(t, r, OK, "held by this instance")
	if evidence(r, "holder") != lock.HolderID(id) || evidence(r, "lockStatus") != string(lock.HeldByThisInstance) {
		t.Fatal(r.Evidence)
	}
	stop()
	stop = hold("other", "host-b", t.TempDir())
	defer stop()
	r = runCheck(t, env.Fresh(), "lease")
	wantStatus(t, r, Warn, "held by another instance wactl:other (host host-b")
}
