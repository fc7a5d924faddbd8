package api

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wactl/wactl/pkg/daemon"
	"github.com/wactl/wactl/pkg/dedupe"
	"github.com/wactl/wactl/pkg/store"
)

// parityRow is one row of docs/api.md's route table ("Route by route"):
// the request the app, its Functions proxy or processOutbox make, and the
// fields they read from the answer. fields are paths into the JSON answer:
// "a.b" (present, may be null), "a[].b" (a non-empty list whose every
// element has b); "=v" after a path pins its value.
type parityRow struct {
	name         string
	method, path string
	token        string // "admin", "user", "svc" or "" (none)
	body         any
	hdr          []string
	code         int
	fields       []string
	html         string // for the QR page: text the page must hold
}

// parityAcc is connected; parityQR shows a QR; parityPhone is re-added.
var (
	parityAcc   = readAcc
	parityQR    = "account_prod_2222222222222222222222222222bbbb"
	parityPhone = "+40722000333"
)

func parityRows() []parityRow {
	one := dedupe.ThreadID(parityAcc, "40720000001@s.whatsapp.net")
	readdID := dedupe.AccountIDFromCanonical("prod", parityPhone)
	return []parityRow{
		{name: "health (diagnostics screen)", method: "GET", path: "/health", code: 200,
			fields: []string{"ok", "status", "waMode=active", "lockStatus", "lockHolder", "instanceId", "connected", "needs_qr", "accounts_total", "sessions_dir_writable", "requestId"}},
		{name: "ready (diagnostics screen)", method: "GET", path: "/ready", code: 200,
			fields: []string{"ready", "mode=active", "reason", "instanceId", "lockStatus", "heldBy", "lockExpiresInSeconds", "timestamp"}},
		{name: "accounts list (accounts screen, polled every 2 s)", method: "GET", path: "/api/whatsapp/accounts", token: "admin", code: 200,
			fields: []string{"success=true", "instanceId", "waMode=active", "accounts[].id", "accounts[].name", "accounts[].phone",
				"accounts[].status", "accounts[].qrCode", "accounts[].pairingCode", "accounts[].createdAt", "accounts[].lastUpdate", "accounts[].lastError"}},
		{name: "add-account", method: "POST", path: "/api/whatsapp/add-account", token: "admin",
			body: map[string]any{"name": "Shop", "phone": parityPhone}, code: 200,
			fields: []string{"success=true", "account.id=" + readdID, "account.name", "account.phone=" + parityPhone, "account.status=connecting",
				"account.qrCode", "account.pairingCode", "account.createdAt"}},
		{name: "add-account, same phone while live", method: "POST", path: "/api/whatsapp/add-account", token: "admin",
			body: map[string]any{"name": "Shop", "phone": parityPhone}, code: 200,
			fields: []string{"success=true", "account.id=" + readdID, "account.status", "account.qrCode", "account.pairingCode", "account.createdAt"}},
		{name: "regenerate-qr, fresh QR", method: "POST", path: "/api/whatsapp/regenerate-qr/" + parityQR, token: "admin", code: 200,
			fields: []string{"success=true", "idempotent=true", "status=qr_ready", "qrCode"}},
		{name: "regenerate-qr, pairing in progress", method: "POST", path: "/api/whatsapp/regenerate-qr/" + readdID, token: "admin", code: 202,
			fields: []string{"success=true", "status=already_in_progress", "message"}},
		{name: "regenerate-qr, unknown account", method: "POST", path: "/api/whatsapp/regenerate-qr/account_prod_00000000000000000000000000000000", token: "admin", code: 404,
			fields: []string{"success=false", "error=account_not_found", "message"}},
		{name: "QR page", method: "GET", path: "/api/whatsapp/qr/" + parityQR, token: "admin", code: 200, html: "data:image/png;base64,"},
		{name: "send-message (whatsappProxySend)", method: "POST", path: "/api/whatsapp/send-message", token: "admin",
			body: map[string]any{"accountId": parityAcc, "to": "40720000001", "message": "hello"}, hdr: []string{"X-Request-ID", strings.Repeat("ab", 32)}, code: 200,
			fields: []string{"success=true", "messageId", "status=sent"}},
		{name: "send-message again (processOutbox retry)", method: "POST", path: "/api/whatsapp/send-message", token: "svc",
			body: map[string]any{"accountId": parityAcc, "to": "40720000001", "message": "hello"}, hdr: []string{"X-Request-ID", strings.Repeat("ab", 32)}, code: 200,
			fields: []string{"success=true", "duplicate=true"}},
		{name: "send-message, account not connected", method: "POST", path: "/api/whatsapp/send-message", token: "svc",
			body: map[string]any{"accountId": parityQR, "to": "40720000001", "message": "later"}, hdr: []string{"X-Request-ID", strings.Repeat("cd", 32)}, code: 200,
			fields: []string{"success=true", "queued=true", "messageId"}},
		{name: "threads (limit=500, orderBy=lastMessageAt)", method: "GET", path: "/api/whatsapp/threads/" + parityAcc + "?limit=500&orderBy=lastMessageAt", token: "user", code: 200,
			fields: []string{"success=true", "count", "threads[].id", "threads[].accountId", "threads[].clientJid", "threads[].displayName",
				"threads[].lastMessageText", "threads[].lastMessagePreview", "threads[].lastMessageAt", "threads[].lastMessageAtMs",
				"threads[].lastMessageDirection", "threads[].isGroup", "threads[].hidden", "threads[].archived", "threads[].redirectTo"}},
		{name: "threads, unknown account", method: "GET", path: "/api/whatsapp/threads/account_prod_00000000000000000000000000000000?limit=500&orderBy=lastMessageAt", token: "user", code: 200,
			fields: []string{"success=true", "count=0", "threads"}},
		{name: "inbox", method: "GET", path: "/api/whatsapp/inbox/" + parityAcc + "?limit=500", token: "user", code: 200,
			fields: []string{"success=true", "count", "messages[].messageId", "messages[].threadId", "messages[].clientJid", "messages[].displayName",
				"messages[].body", "messages[].direction", "messages[].status", "messages[].tsClientMs", "messages[].createdAt"}},
		{name: "inbox, unknown account", method: "GET", path: "/api/whatsapp/inbox/account_prod_00000000000000000000000000000000?limit=500", token: "user", code: 200,
			fields: []string{"success=true", "count=0", "messages"}},
		{name: "messages of a thread", method: "GET", path: "/api/whatsapp/messages/" + parityAcc + "/" + one + "?limit=500", token: "user", code: 200,
			fields: []string{"success=true", "count", "thread.id=" + one, "messages[].messageId", "messages[].body", "messages[].direction",
				"messages[].status", "messages[].tsClientMs", "messages[].createdAt"}},
		{name: "rename", method: "PATCH", path: "/api/whatsapp/accounts/" + parityQR + "/name", token: "admin", body: map[string]any{"name": "Renamed"}, code: 200,
			fields: []string{"success=true", "accountId=" + parityQR, "name=Renamed"}},
		{name: "disconnect", method: "POST", path: "/api/whatsapp/disconnect/" + parityQR, token: "admin", code: 200,
			fields: []string{"success=true", "accountId=" + parityQR, "status=disconnected"}},
		{name: "reset", method: "POST", path: "/api/whatsapp/accounts/" + parityQR + "/reset", token: "admin", code: 200,
			fields: []string{"success=true", "accountId=" + parityQR, "status=needs_qr"}},
		{name: "delete", method: "DELETE", path: "/api/whatsapp/accounts/" + parityQR, token: "admin", code: 200,
			fields: []string{"success=true", "accountId=" + parityQR, "status=deleted"}},
		{name: "dashboard (diagnostics, seed audit)", method: "GET", path: "/api/status/dashboard", token: "admin", code: 200,
			fields: []string{"timestamp", "service.status", "service.waMode", "service.instanceId", "service.lockStatus", "summary.connected", "summary.total", "accounts"}},
		{name: "no credential (692eef65 proxy)", method: "GET", path: "/api/whatsapp/accounts", code: 401,
			fields: []string{"success=false", "error=unauthorized", "message", "header=Authorization", "accepts"}},
	}
}

// passiveRow: every mutation on a PASSIVE instance.
var passiveRow = parityRow{name: "mutation on a PASSIVE instance", method: "POST", path: "/api/whatsapp/add-account", token: "admin",
	body: map[string]any{"name": "x"}, code: 503,
	fields: []string{"success=false", "error=instance_passive", "mode=passive", "message=" + PassiveMessage, "instanceId", "holderInstanceId", "retryAfterSeconds"}}

// testRouteParity runs every row in order on one instance; the state the
// rows need is seeded first, as the app would find it.
func testRouteParity(t *testing.T, e *env) {
	e.wa.addAccount(parityAcc, "+40720000000", daemon.StateConnected)
	e.wa.addAccount(parityQR, "+40720000099", daemon.StateQRReady)
	e.wa.setPairing(parityQR, PairingState{QR: "2@parity", IssuedAt: e.clk.Now()})
	ctx := context.Background()
	for _, id := range []string{parityAcc, parityQR} {
		if err := e.st.PutAccount(ctx, store.Account{ID: id, Name: "acc " + id, Status: "connected", UpdatedAt: e.clk.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	seed(t, e.st, 5, e.clk.Now().Add(-time.Hour))
	for _, row := range parityRows() {
		if row.name == "regenerate-qr, pairing in progress" {
			// The re-added account's pairing has started and has no QR yet.
			e.wa.setPairing(dedupe.AccountIDFromCanonical("prod", parityPhone), PairingState{InProgress: true, IssuedAt: e.clk.Now()})
		}
		checkRow(t, e, row)
	}
	e.wa.setActive(false)
	checkRow(t, e, passiveRow)
}

func checkRow(t *testing.T, e *env, row parityRow) {
	t.Helper()
	tok := map[string]string{"admin": e.admin, "user": e.user, "svc": e.svc}[row.token]
	r := e.do(row.method, row.path, tok, row.body, row.hdr...)
	if r.code != row.code {
		t.Errorf("%s: %s %s answered %d, want %d: %s", row.name, row.method, row.path, r.code, row.code, r.raw)
		return
	}
	if row.html != "" {
		if !strings.Contains(string(r.raw), row.html) {
			t.Errorf("%s: page lacks %q", row.name, row.html)
		}
		return
	}
	if r.str("requestId") == "" && row.path != "/ready" {
		t.Errorf("%s: no requestId: %s", row.name, r.raw)
	}
	for _, f := range row.fields {
		if msg := checkField(r.body, f); msg != "" {
			t.Errorf("%s: %s: %s", row.name, msg, r.raw)
		}
	}
}

// checkField checks one "path" or "path=value" against a decoded answer.
func checkField(body map[string]any, spec string) string {
	path, want, pinned := strings.Cut(spec, "=")
	var walk func(v any, parts []string) string
	walk = func(v any, parts []string) string {
		if len(parts) == 0 {
			if pinned && fmt.Sprint(v) != want {
				return fmt.Sprintf("%s is %v, want %s", path, v, want)
			}
			return ""
		}
		name, each := strings.CutSuffix(parts[0], "[]")
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Sprintf("%s: %s is not an object", path, parts[0])
		}
		x, ok := m[name]
		if !ok {
			return fmt.Sprintf("%s: no %q", path, name)
		}
		if !each {
			return walk(x, parts[1:])
		}
		list, ok := x.([]any)
		if !ok || len(list) == 0 {
			return fmt.Sprintf("%s: %q is not a non-empty list", path, name)
		}
		for _, el := range list {
			if msg := walk(el, parts[1:]); msg != "" {
				return msg
			}
		}
		return ""
	}
	return walk(body, strings.Split(path, "."))
}

func parityStatus(e **env) envOpt {
	return func(o *Options, d *Deps) {
		d.Status = func() daemon.Status {
			s := daemon.Status{Now: time.Now(), StartedAt: time.Now().Add(-time.Minute), Service: "wactl", InstanceID: "inst-a",
				WAMode: "active", LockStatus: "held_by_this_instance", LockHolder: "inst-a", LockRemaining: 80 * time.Second,
				SessionsDirWritable: true, StoreReachable: true}
			if *e != nil {
				if !(*e).wa.Active() {
					s.WAMode, s.LockStatus, s.LockHolder, s.LockRemaining = "passive", "held_by_other", "inst-b", 42*time.Second
				}
				s.Accounts = (*e).wa.Accounts()
			}
			return s
		}
	}
}

// TestRouteParityEmbedded: docs/api.md's route table, row by row, on the
// embedded store.
func TestRouteParityEmbedded(t *testing.T) {
	var e *env
	e = newEnv(t, parityStatus(&e))
	testRouteParity(t, e)
}

// TestRouteParityFirestore: the same rows on the Firestore emulator, where
// the accounts list, add-account, send-message and the read routes read
// Firestore documents.
func TestRouteParityFirestore(t *testing.T) {
	var e *env
	e = newFirestoreEnv(t, parityStatus(&e))
	testRouteParity(t, e)
}
