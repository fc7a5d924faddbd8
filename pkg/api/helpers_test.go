package api

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/types"

	"github.com/wactl/wactl/internal/fsemu"
	"github.com/wactl/wactl/pkg/daemon"
	"github.com/wactl/wactl/pkg/store"
	"github.com/wactl/wactl/pkg/store/sqlite"
)

func TestMain(m *testing.M) { os.Exit(fsemu.Main(m)) }

const testProject = "wactl-test"

// clock is a settable test clock shared by the API and the store.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().Truncate(time.Millisecond)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fakeWA implements WhatsApp in memory and records every call.
type fakeWA struct {
	mu       sync.Mutex
	active   bool
	accounts map[string]*daemon.AccountStatus
	order    []string
	pairing  map[string]PairingState
	sends    []fakeSend
	calls    []string
	sendErr  error
	// regen, when set, is what RegenerateQR waits on before answering.
	regen    chan error
	regenErr error
	added    []AddAccount
}

type fakeSend struct {
	Account, To, Body, ID string
}

func newFakeWA() *fakeWA {
	return &fakeWA{active: true, accounts: map[string]*daemon.AccountStatus{}, pairing: map[string]PairingState{}}
}

func (f *fakeWA) addAccount(id, phone, state string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.accounts[id] = &daemon.AccountStatus{ID: id, Name: "acc " + id, Phone: phone, State: state}
	f.order = append(f.order, id)
}

func (f *fakeWA) setState(id, state string) {
	f.mu.Lock()
	f.accounts[id].State = state
	f.mu.Unlock()
}

func (f *fakeWA) setActive(v bool) {
	f.mu.Lock()
	f.active = v
	f.mu.Unlock()
}

func (f *fakeWA) setPairing(id string, p PairingState) {
	f.mu.Lock()
	f.pairing[id] = p
	f.mu.Unlock()
}

func (f *fakeWA) sent() []fakeSend {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeSend(nil), f.sends...)
}

func (f *fakeWA) Active() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.active
}

func (f *fakeWA) Accounts() []daemon.AccountStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]daemon.AccountStatus, 0, len(f.order))
	for _, id := range f.order {
		if a, ok := f.accounts[id]; ok {
			out = append(out, *a)
		}
	}
	return out
}

func (f *fakeWA) Pairing(id string) (PairingState, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.pairing[id]
	return p, ok
}

func (f *fakeWA) AddAccount(ctx context.Context, req AddAccount) error {
	f.mu.Lock()
	f.added = append(f.added, req)
	f.mu.Unlock()
	f.addAccount(req.AccountID, req.Phone, daemon.StateConnecting)
	return nil
}

func (f *fakeWA) RegenerateQR(ctx context.Context, id string) error {
	f.mu.Lock()
	f.calls = append(f.calls, "regen:"+id)
	ch, err := f.regen, f.regenErr
	_, ok := f.accounts[id]
	f.mu.Unlock()
	if !ok {
		return ErrNoAccount
	}
	if ch != nil {
		select {
		case err = <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return err
}

func (f *fakeWA) op(name, id string, fn func(a *daemon.AccountStatus)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, name+":"+id)
	a, ok := f.accounts[id]
	if !ok {
		return ErrNoAccount
	}
	fn(a)
	return nil
}

func (f *fakeWA) Disconnect(ctx context.Context, id string) error {
	return f.op("disconnect", id, func(a *daemon.AccountStatus) { a.State = daemon.StateStopped })
}

func (f *fakeWA) Reset(ctx context.Context, id string) error {
	return f.op("reset", id, func(a *daemon.AccountStatus) { a.State = daemon.StateNeedsQR })
}

func (f *fakeWA) Rename(ctx context.Context, id, name string) error {
	return f.op("rename", id, func(a *daemon.AccountStatus) { a.Name = name })
}

func (f *fakeWA) Delete(ctx context.Context, id string) error {
	return f.op("delete", id, func(a *daemon.AccountStatus) { a.State = "deleted" })
}

func (f *fakeWA) SendText(ctx context.Context, id string, to types.JID, body, waID string) (SentInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, ok := f.accounts[id]
	if !ok {
		return SentInfo{}, ErrNoAccount
	}
	if a.State != daemon.StateConnected {
		return SentInfo{}, ErrNotConnected
	}
	if f.sendErr != nil {
		return SentInfo{}, f.sendErr
	}
	f.sends = append(f.sends, fakeSend{Account: id, To: to.String(), Body: body, ID: waID})
	return SentInfo{ID: waID, Timestamp: time.Now()}, nil
}

// keyServer publishes test signing certificates like Google's endpoint.
type keyServer struct {
	srv     *httptest.Server
	key     *rsa.PrivateKey
	kid     string
	fetches atomic.Int64
	down    atomic.Bool
}

func newKeyServer(t testing.TB) *keyServer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "securetoken.system.gserviceaccount.com"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ks := &keyServer{key: key, kid: "test-kid-1"}
	certs := map[string]string{ks.kid: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))}
	ks.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ks.fetches.Add(1)
		if ks.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=3600, must-revalidate, no-transform")
		_ = json.NewEncoder(w).Encode(certs)
	}))
	t.Cleanup(ks.srv.Close)
	return ks
}

// sign makes an RS256 JWT with the given header kid and claims.
func sign(t testing.TB, key *rsa.PrivateKey, kid string, claims map[string]any) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	head := enc(map[string]any{"alg": "RS256", "kid": kid, "typ": "JWT"})
	body := enc(claims)
	sum := sha256.Sum256([]byte(head + "." + body))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return head + "." + body + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// claimsFor are valid claims of uid at now.
func claimsFor(uid string, now time.Time) map[string]any {
	return map[string]any{
		"iss": "https://securetoken.google.com/" + testProject, "aud": testProject, "sub": uid, "user_id": uid,
		"iat": now.Add(-time.Minute).Unix(), "auth_time": now.Add(-time.Hour).Unix(), "exp": now.Add(time.Hour).Unix(),
		"email": uid + "@example.com", "email_verified": true,
	}
}

type env struct {
	t     testing.TB
	api   *API
	wa    *fakeWA
	st    store.Store
	ks    *keyServer
	clk   *clock
	srv   *httptest.Server
	admin string // bearer token of an admin user
	user  string // bearer token of a plain user
	svc   string // the service token
}

type envOpt func(*Options, *Deps)

func newEnv(t testing.TB, opts ...envOpt) *env {
	t.Helper()
	clk := newClock()
	st, err := sqlite.Open(context.Background(), sqlite.Options{Dir: t.TempDir(), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return newEnvWithStore(t, st, clk, opts...)
}

func newEnvWithStore(t testing.TB, st store.Store, clk *clock, opts ...envOpt) *env {
	t.Helper()
	ks := newKeyServer(t)
	wa := newFakeWA()
	o := Options{ProjectID: testProject, KeyURL: ks.srv.URL, ServiceToken: "svc-secret-token", AdminUIDs: []string{"admin-uid"}}
	d := Deps{WhatsApp: wa, Store: st, InstanceID: "inst-a", Now: clk.Now, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Status: func() daemon.Status {
			return daemon.Status{InstanceID: "inst-a", LockHolder: "inst-b", LockRemaining: 42 * time.Second}
		}}
	for _, fn := range opts {
		fn(&o, &d)
	}
	a, err := New(o, d)
	if err != nil {
		t.Fatal(err)
	}
	h := daemon.NewHandler(daemon.HandlerOptions{Status: d.Status, Register: a.Register})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	e := &env{t: t, api: a, wa: wa, st: st, ks: ks, clk: clk, srv: srv, svc: o.ServiceToken}
	e.admin = sign(t, ks.key, ks.kid, claimsFor("admin-uid", clk.Now()))
	e.user = sign(t, ks.key, ks.kid, claimsFor("user-uid", clk.Now()))
	return e
}

type resp struct {
	code int
	body map[string]any
	raw  []byte
	hdr  http.Header
}

// do sends a request; body may be a string (raw) or a value (JSON).
func (e *env) do(method, path, token string, body any, hdr ...string) resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r := resp{code: res.StatusCode, raw: raw, hdr: res.Header}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

func (r resp) str(k string) string {
	s, _ := r.body[k].(string)
	return s
}
