package serve_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/watest"
)

// pairAllViaAPI pairs one account per phone through the app's API on p, as
// users pair on the ACTIVE host: add-account for each (the API takes them
// one at a time), then one poller reads the account list and the fake
// phone scans every QR as it shows, the pairings running in the daemon at
// the same time. Nothing is pre-paired: each session is made by the
// daemon's own pairing flow against the fake server. The accounts come back
// in the order of phones, paired (not necessarily connected yet).
func pairAllViaAPI(t *testing.T, srv *wafake.Server, p *proc, phones []string) []watest.Account {
	t.Helper()
	began := time.Now()
	ids := make([]string, len(phones))
	for i, phone := range phones {
		// 503 while the process restores after gaining the lease (it
		// answers "retry shortly").
		var m map[string]any
		watest.Eventually(t, 20*time.Second, "add-account "+phone, func() bool {
			var code int
			code, m = p.call(t, "POST", "/api/whatsapp/add-account", map[string]any{"name": "Shop " + phone, "phone": "+" + phone}, nil)
			if code != 200 && code != 503 {
				t.Fatalf("add-account %s: %d %v", phone, code, m)
			}
			return code == 200
		})
		ids[i] = m["account"].(map[string]any)["id"].(string)
	}

	type scanned struct {
		i    int
		acct watest.Account
		err  error
	}
	results := make(chan scanned, len(phones))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	accts := make([]watest.Account, len(phones))
	scanning := make([]bool, len(phones)) // a Scan of this account is running
	done, running, most, rescans := 0, 0, 0, 0
	collect := func(r scanned) {
		scanning[r.i] = false
		running--
		switch {
		case r.err == nil:
			accts[r.i] = r.acct
			done++
		case errors.Is(r.err, wafake.ErrUnknownQR):
			// The QR turned over between the poll and the scan: the next
			// poll shows the new one.
			rescans++
			t.Logf("pairing %s: %v; scanning its next QR", phones[r.i], r.err)
		default:
			t.Fatalf("scan QR of %s: %v", phones[r.i], r.err)
		}
	}
	watest.Eventually(t, 30*time.Second+time.Duration(len(phones))*time.Second, "every account paired through the API", func() bool {
	drain:
		for {
			select {
			case r := <-results:
				collect(r)
			default:
				break drain
			}
		}
		if done == len(phones) {
			return true
		}
		_, m := p.call(t, "GET", "/api/whatsapp/accounts", nil, nil)
		list, _ := m["accounts"].([]any)
		for _, x := range list {
			am, _ := x.(map[string]any)
			for i, id := range ids {
				if am["id"] != id || accts[i].ID != "" || scanning[i] {
					continue
				}
				s, _ := am["qrCode"].(string)
				if s == "" {
					continue
				}
				qr := decodeQRPure(t, s)
				if qr == "" {
					continue
				}
				scanning[i] = true
				running++
				most = max(most, running)
				go func(i int, qr string) {
					jid, err := srv.Scan(ctx, qr, phones[i])
					results <- scanned{i: i, acct: watest.Account{ID: ids[i], Phone: phones[i], Device: jid}, err: err}
				}(i, qr)
			}
		}
		// Each list answer carries a PNG per QR: poll gently.
		time.Sleep(100 * time.Millisecond)
		return false
	})
	t.Logf("paired %d accounts through the API in %s (up to %d QR scans at once, %d QRs scanned again)",
		len(phones), time.Since(began).Round(10*time.Millisecond), most, rescans)
	return accts
}
