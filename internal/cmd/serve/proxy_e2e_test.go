package serve_test

import (
	"bytes"
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
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/watest"
	"github.com/wactl/wactl/pkg/api"
)

const proxyProject = "wactl-proxy-test"

// firebaseKeys publishes a signing certificate in the format of Google's
// securetoken endpoint and signs ID tokens of proxyProject with it.
type firebaseKeys struct {
	url string
	key *rsa.PrivateKey
}

func newFirebaseKeys(t *testing.T) *firebaseKeys {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "securetoken"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certs := map[string]string{"kid-1": string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		json.NewEncoder(w).Encode(certs)
	}))
	t.Cleanup(srv.Close)
	return &firebaseKeys{url: srv.URL, key: key}
}

// idToken is the signed-in user's Firebase ID token, as the app sends it.
func (k *firebaseKeys) idToken(t *testing.T, uid string) string {
	t.Helper()
	now := time.Now()
	enc := func(v any) string { b, _ := json.Marshal(v); return base64.RawURLEncoding.EncodeToString(b) }
	head := enc(map[string]any{"alg": "RS256", "kid": "kid-1", "typ": "JWT"})
	body := enc(map[string]any{"iss": "https://securetoken.google.com/" + proxyProject, "aud": proxyProject,
		"sub": uid, "user_id": uid, "iat": now.Add(-time.Minute).Unix(), "auth_time": now.Add(-time.Hour).Unix(),
		"exp": now.Add(time.Hour).Unix(), "email": uid + "@example.com", "email_verified": true})
	sum := sha256.Sum256([]byte(head + "." + body))
	sig, err := rsa.SignPKCS1v15(rand.Reader, k.key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return head + "." + body + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// functionsProxy stands in for functions/whatsappProxy.js: the app calls
// it with its ID token; it forwards the request to wactl with the headers
// of one proxy version. authorization maps the app's Authorization header
// to the one sent to wactl ("" sends none).
func functionsProxy(t *testing.T, backend string, authorization func(appAuth string) string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, backend+r.URL.RequestURI(), bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if id := r.Header.Get("X-Request-ID"); id != "" {
			req.Header.Set("X-Request-ID", id)
		}
		if a := authorization(r.Header.Get("Authorization")); a != "" {
			req.Header.Set("Authorization", a)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// appCall is the Flutter app calling a proxy function with its ID token.
func appCall(t *testing.T, proxy, method, path, idToken string, body any, requestID string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, proxy+path, rd)
	req.Header.Set("Authorization", "Bearer "+idToken)
	if requestID != "" {
		req.Header.Set("X-Request-ID", requestID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// TestFunctionsProxyVersions (issue 22 item 1): the API stays
// authenticated; the 692eef65 proxy (Authorization stripped, nothing
// added) gets a 401 that names the header and the credentials to send;
// the two supported proxy versions — forwarding the signed-in user's ID
// token, or sending wactl's service token from a secret — work against a
// running `wactl serve`. An instance with no authentication configured
// says so in its log and in every /api/whatsapp answer.
func TestFunctionsProxyVersions(t *testing.T) {
	srv := wafake.Start(t)
	keys := newFirebaseKeys(t)
	p := serve(t, srv, t.TempDir(), "WACTL_API_FIREBASE_PROJECT_ID="+proxyProject, "WACTL_API_FIREBASE_KEY_URL="+keys.url,
		"WACTL_API_ADMIN_UIDS=admin-uid", "WACTL_API_SERVICE_TOKEN="+token)
	watest.Eventually(t, 30*time.Second, "ACTIVE", func() bool { m := p.health(); return m != nil && m["waMode"] == "active" })
	user := keys.idToken(t, "admin-uid")

	old := functionsProxy(t, p.url, func(string) string { return "" })
	forward := functionsProxy(t, p.url, func(app string) string { return app })
	service := functionsProxy(t, p.url, func(string) string { return "Bearer " + token })

	// 692eef65: refused, and told what to send.
	code, m := appCall(t, old.URL, "GET", "/api/whatsapp/accounts", user, nil, "")
	msg, _ := m["message"].(string)
	if code != 401 || m["error"] != "unauthorized" || m["header"] != "Authorization" ||
		!strings.Contains(msg, "Authorization: Bearer") || !strings.Contains(msg, "Firebase ID token") || !strings.Contains(msg, "service token") {
		t.Fatalf("692eef65 proxy: %d %v", code, m)
	}
	if acc, _ := m["accepts"].([]any); len(acc) != 2 || acc[0] != api.CredentialFirebase || acc[1] != api.CredentialService {
		t.Fatalf("accepts %v", m["accepts"])
	}
	if _, leaked := m["accounts"]; leaked {
		t.Fatal("refused answer carries data")
	}

	// Forwarding the user's ID token, and the service token: the accounts
	// screen, add-account and processOutbox's send-message all work.
	for name, proxy := range map[string]string{"forwards the ID token": forward.URL, "service token": service.URL} {
		phone := map[string]string{"forwards the ID token": "+40722000901", "service token": "+40722000902"}[name]
		code, m := appCall(t, proxy, "POST", "/api/whatsapp/add-account", user, map[string]any{"name": "Shop", "phone": phone}, "")
		if code != 200 {
			t.Fatalf("%s: add-account %d %v", name, code, m)
		}
		id := m["account"].(map[string]any)["id"].(string)
		code, m = appCall(t, proxy, "GET", "/api/whatsapp/accounts", user, nil, "")
		if code != 200 || !strings.Contains(toJSON(m["accounts"]), id) {
			t.Fatalf("%s: accounts %d %v", name, code, m)
		}
		code, m = appCall(t, proxy, "POST", "/api/whatsapp/send-message", user,
			map[string]any{"accountId": id, "to": "40788000001", "message": "hello"}, strings.Repeat("c"+name[:1], 32))
		if code != 200 || m["queued"] != true {
			t.Fatalf("%s: send-message %d %v", name, code, m)
		}
		code, m = appCall(t, proxy, "GET", "/api/whatsapp/threads/"+id+"?limit=500&orderBy=lastMessageAt", user, nil, "")
		if code != 200 {
			t.Fatalf("%s: threads %d %v", name, code, m)
		}
	}

	// No authentication configured: the log says so plainly and every
	// /api/whatsapp call is refused with what the operator sets.
	bare := serve(t, srv, t.TempDir())
	watest.Eventually(t, 30*time.Second, "serving", func() bool { return bare.health() != nil })
	code, m = appCall(t, functionsProxy(t, bare.url, func(string) string { return "" }).URL, "GET", "/api/whatsapp/accounts", user, nil, "")
	if code != 503 || m["error"] != "auth_not_configured" || m["message"] != api.NoAuthMessage {
		t.Fatalf("unconfigured: %d %v", code, m)
	}
	if !strings.Contains(bare.log(), "no authentication is configured") {
		t.Fatalf("startup log does not say the API refuses callers:\n%s", bare.log())
	}
	if !strings.Contains(p.log(), "the app's API accepts") {
		t.Fatalf("startup log does not say what the API accepts:\n%s", p.log())
	}
}

func toJSON(v any) string { b, _ := json.Marshal(v); return string(b) }
