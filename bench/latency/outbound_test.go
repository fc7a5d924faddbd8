package latency

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/wactl/wactl/bench/internal/benchd"
	"github.com/wactl/wactl/internal/wasock"
	"github.com/wactl/wactl/pkg/api"
	"github.com/wactl/wactl/pkg/sessions"
)

// barePeers is the phone prefix of the peers the bare baselines send to
// (wactl's sends go to "4078820…").
const barePeers = "4078830"

var apiClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 60 * time.Second}

// BenchmarkOutbound: POST /api/whatsapp/send-message for one of 20
// accounts → the fake server receiving the WhatsApp message → the
// document readable at status "sent" (embedded: read loop; Firestore:
// thread listeners), at each rate of WACTL_BENCH_RATES. Baseline in the
// same run, same rates, just before: 20 bare whatsmeow clients (paired on
// the same fake, in this process) calling SendMessage; then the same from
// 20 more clients in a child process (baresender_test.go), which crosses
// a process boundary to the fake as wactl's daemon does. Run with
// -benchtime 1x.
func BenchmarkOutbound(b *testing.B) {
	for _, backend := range []string{"embedded", "firestore"} {
		b.Run(backend, func(b *testing.B) {
			r := newRig(b, backend)
			bare := bareClients(b, r)
			proc := startBareSender(b, r.srv, accountsN)
			threads := make([]string, accountsN)
			for i := range accountsN {
				threads[i] = r.thread(i, peerJID("4078820", i))
			}
			seen := r.watch(b, threads, "sent")
			// Warm-up, not timed: the first send of each pair fetches the
			// peer's devices and prekeys.
			var warm []string
			for i := range accountsN {
				id, err := r.apiSend(i, "warm-up")
				if err != nil {
					b.Fatal(err)
				}
				warm = append(warm, id)
				if _, err := bare[i].SendMessage(context.Background(), peerJID(barePeers, i),
					&waE2E.Message{Conversation: proto.String("warm-up")}); err != nil {
					b.Fatal(err)
				}
			}
			seen.waitAll(warm, 60*time.Second)
			b.ResetTimer()
			for range b.N {
				for _, rs := range rates() {
					logf(b, "load average before %g msg/s: %s", rs.perSec, benchd.Loadavg())
					base, baseRet := newPhase(), newPhase()
					var baseErr atomic.Int64
					span := pace(rs, accountsN, func(w, k int, due time.Time) {
						id := bare[w].GenerateMessageID()
						t0 := time.Now() // the call's start: see sendClock
						base.began(id, t0)
						baseRet.began(id, t0)
						_, err := bare[w].SendMessage(context.Background(), peerJID(barePeers, w),
							&waE2E.Message{Conversation: proto.String(fmt.Sprintf("bench %d", k))}, whatsmeow.SendRequestExtra{ID: id})
						if err != nil {
							baseErr.Add(1)
							return
						}
						retAt.Store(id, time.Now())
					})

					// Firestore: the second baseline, a bare SendMessage after
					// one bare read of a document in the same emulator from
					// this host (outbox/{key}, absent, as wactl's idempotency
					// read usually finds it): the floor of a send that must
					// ask the store first.
					var base2 *phase
					var base2Err atomic.Int64
					var read2 *phase
					if r.fs != nil {
						base2, read2 = newPhase(), newPhase()
						pace(rs, accountsN, func(w, k int, due time.Time) {
							id := bare[w].GenerateMessageID()
							t0 := time.Now() // the call's start: see sendClock
							base2.began(id, t0)
							read2.began(id, t0)
							ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
							defer cancel()
							if _, err := r.fs.Collection("outbox").Doc(newKey()).Get(ctx); status.Code(err) != codes.NotFound {
								base2Err.Add(1)
								return
							}
							readAt.Store(id, time.Now())
							_, err := bare[w].SendMessage(ctx, peerJID(barePeers, w),
								&waE2E.Message{Conversation: proto.String(fmt.Sprintf("bench %d", k))}, whatsmeow.SendRequestExtra{ID: id})
							if err != nil {
								base2Err.Add(1)
							}
						})
					}

					// The same bare send from a process of its own (baresender_test.go).
					baseProc := newPhase()
					var baseProcErr atomic.Int64
					pace(rs, accountsN, func(w, k int, due time.Time) {
						id := bare[w].GenerateMessageID()
						rep, ok := proc.send(w, id, peerJID(barePeers, w), fmt.Sprintf("bench %d", k))
						if !ok {
							baseProcErr.Add(1)
							return
						}
						baseProc.began(id, rep.start)
					})

					ph, phRet := newPhase(), newPhase()
					var sendErr atomic.Int64
					smp := r.d.Sample()
					span2 := pace(rs, accountsN, func(w, k int, due time.Time) {
						key := newKey()
						id := api.DeriveMessageID(r.accts[w].ID, key)
						t0 := time.Now() // the call's start: see sendClock
						ph.began(id, t0)
						phRet.began(id, t0)
						if _, err := r.apiSendKey(w, key, fmt.Sprintf("bench %d", k)); err != nil {
							sendErr.Add(1)
							return
						}
						retAt.Store(id, time.Now())
					})
					seen.waitAll(ph.ids(), 120*time.Second)
					maxBacklog := smp.End()
					fake := map[string]time.Time{}
					for _, m := range r.srv.Sent() {
						if _, ok := fake[m.ID]; !ok {
							fake[m.ID] = m.At
						}
					}
					atFake := func(id string) (time.Time, bool) { t, ok := fake[id]; return t, ok }
					atRet := func(id string) (time.Time, bool) {
						v, ok := retAt.Load(id)
						if !ok {
							return time.Time{}, false
						}
						return v.(time.Time), true
					}
					baseLost := base.collect(atFake)
					baseRet.collect(atRet)
					phFake := newPhase()
					phFake.start = ph.start
					lostFake := phFake.collect(atFake)
					phRet.collect(atRet)
					lostDoc := ph.collect(seen.get)
					lostProc := baseProc.collect(atFake)
					procFig := fmt.Sprintf(" | bare SendMessage in its own process → fake p50 %s p99 %s (not at the fake %d, errors %d), wactl against it: ratio p50 %s p99 %s",
						ms(baseProc.q(.5)), ms(baseProc.q(.99)), lostProc, baseProcErr.Load(), ratio(phFake.q(.5), baseProc.q(.5)), ratio(phFake.q(.99), baseProc.q(.99)))
					floor := ""
					if base2 != nil {
						lost2 := base2.collect(atFake)
						read2.collect(func(id string) (time.Time, bool) {
							v, ok := readAt.Load(id)
							if !ok {
								return time.Time{}, false
							}
							return v.(time.Time), true
						})
						floor = fmt.Sprintf(" | bare read + SendMessage → fake p50 %s p99 %s (the read alone p50 %s p99 %s; not at the fake %d, errors %d), wactl against it: ratio p50 %s p99 %s",
							ms(base2.q(.5)), ms(base2.q(.99)), ms(read2.q(.5)), ms(read2.q(.99)), lost2, base2Err.Load(),
							ratio(phFake.q(.5), base2.q(.5)), ratio(phFake.q(.99), base2.q(.99)))
					}
					n := len(ph.start)
					logf(b, "%s %g msg/s: %d sends in %.1fs (achieved %.0f/s; baseline %.0f/s) | to the fake: wactl p50 %s p99 %s, bare SendMessage p50 %s p99 %s, ratio p50 %s p99 %s%s%s | "+
						"API answer p50 %s p99 %s (bare SendMessage returns p50 %s p99 %s) | document at sent p50 %s p99 %s | "+
						"not at the fake %d, no sent document %d, API errors %d; baseline not at the fake %d (errors %d); journal backlog max %g; load %s",
						backend, rs.perSec, n, span2.Seconds(), float64(n)/span2.Seconds(), float64(len(base.start))/span.Seconds(),
						ms(phFake.q(.5)), ms(phFake.q(.99)), ms(base.q(.5)), ms(base.q(.99)), ratio(phFake.q(.5), base.q(.5)), ratio(phFake.q(.99), base.q(.99)), procFig, floor,
						ms(phRet.q(.5)), ms(phRet.q(.99)), ms(baseRet.q(.5)), ms(baseRet.q(.99)),
						ms(ph.q(.5)), ms(ph.q(.99)), lostFake, lostDoc, sendErr.Load(), baseLost, baseErr.Load(), maxBacklog, benchd.Loadavg())
					tag := fmt.Sprintf("@%g", rs.perSec)
					b.ReportMetric(float64(phFake.q(.5))/1e6, "fake-p50-ms"+tag)
					b.ReportMetric(float64(base.q(.5))/1e6, "bare-fake-p50-ms"+tag)
					b.ReportMetric(float64(baseProc.q(.5))/1e6, "bare-proc-fake-p50-ms"+tag)
					b.ReportMetric(float64(ph.q(.5))/1e6, "doc-sent-p50-ms"+tag)
					b.ReportMetric(float64(ph.q(.99))/1e6, "doc-sent-p99-ms"+tag)
				}
			}
		})
	}
}

var retAt, readAt syncMap

func newKey() string {
	var k [32]byte
	rand.Read(k[:])
	return hex.EncodeToString(k[:])
}

func (r *rig) apiSend(i int, text string) (string, error) {
	key := newKey()
	return r.apiSendKey(i, key, text)
}

// apiSendKey sends as the Cloud Functions do; it returns the WhatsApp id.
func (r *rig) apiSendKey(i int, key, text string) (string, error) {
	body, _ := json.Marshal(map[string]any{"accountId": r.accts[i].ID, "to": peerJID("4078820", i).User, "message": text})
	req, _ := http.NewRequest("POST", r.d.URL+"/api/whatsapp/send-message", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+benchd.Token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-ID", key)
	resp, err := apiClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("send-message: %d %s", resp.StatusCode, b)
	}
	return api.DeriveMessageID(r.accts[i].ID, key), nil
}

// bareClients pairs 20 more accounts on the same fake and keeps their
// whatsmeow clients connected in this process: the baseline sender.
func bareClients(b *testing.B, r *rig) []*whatsmeow.Client {
	dir := b.TempDir()
	accts := benchd.PairAccounts(b, r.srv, dir, accountsN, "4076620")
	sess, err := sessions.Open(filepath.Join(dir, "sessions"), sessions.Options{})
	if err != nil {
		b.Fatal(err)
	}
	out := make([]*whatsmeow.Client, accountsN)
	for i, a := range accts {
		dev, err := sess.OpenDevice(context.Background(), a.ID, sessions.DeviceOptions{})
		if err != nil {
			b.Fatal(err)
		}
		cli := r.srv.NewClient(dev.Store, nil)
		if err := connectWait(cli); err != nil {
			b.Fatalf("bare client %d: %v", i, err)
		}
		b.Cleanup(func() { wasock.Close(cli); dev.Close() })
		out[i] = cli
	}
	return out
}

// sendClock: outbound clocks start when the call starts, not at the due
// time as inbound ones do. Each of the bench's 20 senders waits for its
// previous call's answer (wactl's API answers after the document and the
// key's claim are written), where the app's callers do not wait for each
// other, so a due-time clock would count the bench's own queue as wactl's.
// Inbound, the fake's sends never wait, so there the due time is the send.
const sendClock = "call start"
