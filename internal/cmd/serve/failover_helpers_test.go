package serve_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"

	"github.com/wactl/wactl/internal/wafake"
	"github.com/wactl/wactl/internal/watest"
)

// failoverTraffic is the traffic of the issue 19 failover tests: peers
// write to the accounts, an account replies to one peer (the talker)
// through a host's API, and every message sent is remembered so the test
// can check it was recorded exactly once.
type failoverTraffic struct {
	t      *testing.T
	srv    *wafake.Server
	client *firestore.Client
	talker string
	sent   []string
	from   map[string]string // message id → the peer that sent it
}

// send a text from peer `from` to acct.
func (f *failoverTraffic) send(from string, acct watest.Account, body string) {
	f.t.Helper()
	id, err := f.srv.SendFromPeer(context.Background(), types.NewJID(from, types.DefaultUserServer), acct.Device.ToNonAD(),
		&waE2E.Message{Conversation: proto.String(body)})
	if err != nil {
		f.t.Fatal(err)
	}
	f.sent = append(f.sent, id)
	if f.from == nil {
		f.from = map[string]string{}
	}
	f.from[id] = from
}

func (f *failoverTraffic) sendAll(accts []watest.Account, phase, from string) {
	f.t.Helper()
	for i, acct := range accts {
		f.send(from, acct, fmt.Sprintf("%s %d", phase, i))
	}
}

// recorded counts the message documents of every WhatsApp message id, in
// one query (one query per id is seconds with a hundred ids).
func (f *failoverTraffic) recorded() map[string]int {
	docs, err := f.client.CollectionGroup("messages").Select("waMessageId").Documents(context.Background()).GetAll()
	if err != nil {
		return nil
	}
	out := map[string]int{}
	for _, d := range docs {
		if id, _ := d.Data()["waMessageId"].(string); id != "" {
			out[id]++
		}
	}
	return out
}

// waitRecordedOnce waits until every message sent so far has its message
// document, then checks that none has two.
func (f *failoverTraffic) waitRecordedOnce() {
	f.t.Helper()
	var missing string
	watest.Eventually(f.t, 30*time.Second, "messages recorded", func() bool {
		got := f.recorded()
		for _, id := range f.sent {
			if got[id] == 0 {
				missing = id
				return false
			}
		}
		return true
	})
	time.Sleep(time.Second) // a duplicate would land within this
	got := f.recorded()
	for _, id := range f.sent {
		if got[id] != 1 {
			f.t.Fatalf("message %s recorded %d times (last missing while waiting: %s)", id, got[id], missing)
		}
	}
}

// reply sends a text from acct to the talker through p's API and returns
// what the fake peer made of it (DecryptError "" when it could read it).
func (f *failoverTraffic) reply(p *proc, acct watest.Account, body string) wafake.SentMessage {
	f.t.Helper()
	mine := func() []wafake.SentMessage {
		var out []wafake.SentMessage
		for _, m := range f.srv.Sent() {
			if m.From.User == acct.Device.User && m.To.User == f.talker {
				out = append(out, m)
			}
		}
		return out
	}
	before := len(mine())
	if code, m := p.call(f.t, "POST", "/api/whatsapp/send-message",
		map[string]any{"accountId": acct.ID, "to": f.talker, "message": body}, nil); code != 200 && code != 202 {
		f.t.Fatalf("send-message %s: %d %v", acct.ID, code, m)
	}
	watest.Eventually(f.t, 15*time.Second, "reply of "+acct.ID+" reaches the fake", func() bool { return len(mine()) > before })
	return mine()[before]
}

// converse makes acct reply to the talker twice through p, each reply
// answered: the second reply turns the double ratchet with a key only the
// store p uses holds.
func (f *failoverTraffic) converse(p *proc, acct watest.Account, phase string) {
	f.t.Helper()
	for i := range 2 {
		if m := f.reply(p, acct, fmt.Sprintf("%s reply %d", phase, i)); m.DecryptError != "" {
			f.t.Fatalf("%s: the peer could not read %s's reply: %s", phase, acct.ID, m.DecryptError)
		}
		f.send(f.talker, acct, fmt.Sprintf("%s answer %d", phase, i))
		// The host must have read the answer before the next reply; the
		// exactly-once check comes with the test's next waitRecordedOnce.
		last := f.sent[len(f.sent)-1]
		watest.Eventually(f.t, 30*time.Second, "answer "+last+" recorded", func() bool { return f.recorded()[last] > 0 })
	}
}

// retries counts the retry receipts (undecryptable messages) each account
// sent since a moment, by phone number.
func (f *failoverTraffic) retries(since time.Time) map[string]int {
	out := map[string]int{}
	for _, r := range f.srv.Receipts() {
		if r.Type == "retry" && !r.At.Before(since) {
			out[r.Device.User]++
		}
	}
	return out
}

// retriedSenders counts the retry receipts sent since a moment by the
// peer whose message could not be decrypted.
func (f *failoverTraffic) retriedSenders(since time.Time) map[string]int {
	out := map[string]int{}
	for _, r := range f.srv.Receipts() {
		if r.Type == "retry" && !r.At.Before(since) {
			out[f.from[r.ID]]++
		}
	}
	return out
}

// checkStatuses fails unless every account's document (accounts/{id}, what
// the app shows) says "connected": a PASSIVE host must not write over the
// ACTIVE host's statuses.
func (f *failoverTraffic) checkStatuses(accts []watest.Account, when string) {
	f.t.Helper()
	for _, acct := range accts {
		doc, err := f.client.Collection("accounts").Doc(acct.ID).Get(context.Background())
		if err != nil {
			f.t.Fatalf("%s: accounts/%s: %v", when, acct.ID, err)
		}
		if st, _ := doc.Data()["status"].(string); st != "connected" {
			f.t.Fatalf("%s: accounts/%s status %q, want connected", when, acct.ID, st)
		}
	}
}

// connectionsBy lists the connections a process (its wafake.EnvClientTag)
// opened.
func connectionsBy(srv *wafake.Server, tag string) []wafake.ConnRecord {
	var out []wafake.ConnRecord
	for _, c := range srv.Connections() {
		if c.Client == tag {
			out = append(out, c)
		}
	}
	return out
}

// stop signals p and waits for it to exit; a process still running after
// within gets SIGQUIT, so the Go runtime writes every goroutine's stack to
// its log (shown on failure) before the test fails: a hang at shutdown
// names where it hangs.
func stop(t *testing.T, p *proc, sig syscall.Signal, within time.Duration) (exitCode int, took time.Duration) {
	t.Helper()
	began := time.Now()
	p.cmd.Process.Signal(sig)
	select {
	case <-p.exited:
		return p.cmd.ProcessState.ExitCode(), time.Since(began)
	case <-time.After(within):
	}
	p.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
	}
	t.Fatalf("no exit %s after %s (goroutine dump from SIGQUIT in its log below)", within, sig)
	return 0, 0
}
