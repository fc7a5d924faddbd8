package latency

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"github.com/wactl/wactl/bench/internal/benchd"
	"github.com/wactl/wactl/internal/wafake"
)

// BenchmarkInbound: from the fake server sending a message to one of 20
// accounts to its document being readable (embedded: a read loop on the
// store file; Firestore: a snapshot listener on the thread), at each rate
// of WACTL_BENCH_RATES. Baseline, same run, same rates, just before: a
// bare client writing one equivalent document to the same store, read the
// same way. Run with -benchtime 1x.
func BenchmarkInbound(b *testing.B) {
	for _, backend := range []string{"embedded", "firestore"} {
		b.Run(backend, func(b *testing.B) {
			r := newRig(b, backend)
			peers := make([]string, accountsN)
			threads := make([]string, accountsN)
			for i := range accountsN {
				p := peerJID("4078810", i)
				peers[i] = p.String()
				threads[i] = r.thread(i, p)
			}
			seen := r.watch(b, threads, "")
			// Warm-up, not timed: the first message of each pair sets up
			// the Signal session (pkmsg).
			var warm []string
			for i := range accountsN {
				warm = append(warm, r.inbound(i, "warm-up"))
			}
			seen.waitAll(warm, 60*time.Second)
			bl := r.baseline(b)
			// A second reference, embedded run only (it does not depend on
			// the store): the same messages to 20 bare whatsmeow clients
			// whose handler only notes the arrival: the WhatsApp leg alone.
			var wm []*whatsmeow.Client
			wmSeen := newArrivals()
			if backend == "embedded" {
				wm = bareClients(b, r)
				for _, c := range wm {
					c.AddEventHandler(func(evt any) {
						if m, ok := evt.(*events.Message); ok {
							wmSeen.mark(m.Info.ID, time.Now())
						}
					})
				}
				var warmWM []string
				for i, c := range wm {
					id := wafake.NewMessageID()
					if err := r.sendTo(i, c, id, "warm-up"); err != nil {
						b.Fatal(err)
					}
					warmWM = append(warmWM, id)
				}
				wmSeen.waitAll(warmWM, 60*time.Second)
			}
			b.ResetTimer()
			for range b.N {
				for _, rs := range rates() {
					b.Logf("load average before %g msg/s: %s", rs.perSec, benchd.Loadavg())
					base := newPhase()
					var baseErr atomic.Int64
					span := pace(rs, accountsN, func(w, k int) {
						id := fmt.Sprintf("BASE%06d%s", k, wafake.NewMessageID()[4:])
						base.began(id, time.Now())
						if bl.write(w, id) != nil {
							baseErr.Add(1)
						}
					})
					bl.seen.waitAll(base.ids(), 60*time.Second)
					baseLost := base.collect(bl.seen.get)

					if wm != nil {
						leg := newPhase()
						pace(rs, accountsN, func(w, k int) {
							id := wafake.NewMessageID()
							leg.began(id, time.Now())
							r.sendTo(w, wm[w], id, fmt.Sprintf("bench %d", k))
						})
						wmSeen.waitAll(leg.ids(), 60*time.Second)
						legLost := leg.collect(wmSeen.get)
						b.Logf("%s %g msg/s: WhatsApp leg alone (fake → bare whatsmeow client's event handler): p50 %s p99 %s, not received %d",
							backend, rs.perSec, ms(leg.q(.5)), ms(leg.q(.99)), legLost)
					}

					ph := newPhase()
					var sendErr atomic.Int64
					smp := r.d.Sample()
					before := r.d.Metrics()
					span2 := pace(rs, accountsN, func(w, k int) {
						id := wafake.NewMessageID()
						ph.began(id, time.Now())
						if r.inboundID(w, id, fmt.Sprintf("bench %d", k)) != nil {
							sendErr.Add(1)
						}
					})
					drainStart := time.Now()
					seen.waitAll(ph.ids(), 120*time.Second)
					drain := time.Since(drainStart)
					maxBacklog := smp.End()
					after := r.d.Metrics()
					lost := ph.collect(seen.get)
					n := len(ph.start)
					dc := after["wactl_live_message_delay_seconds_count"] - before["wactl_live_message_delay_seconds_count"]
					ds := after["wactl_live_message_delay_seconds_sum"] - before["wactl_live_message_delay_seconds_sum"]
					b.Logf("%s %g msg/s: %d msgs offered in %.1fs (achieved %.0f/s; baseline %.0f/s); "+
						"wactl p50 %s p99 %s max %s | bare p50 %s p99 %s | ratio p50 %s p99 %s | lost %d (send errors %d), baseline lost %d (errors %d); "+
						"drain after last send %s; /metrics: live delay mean %.2fs over %g msgs, journal backlog max %g; load %s",
						backend, rs.perSec, n, span2.Seconds(), float64(n)/span2.Seconds(), float64(len(base.start))/span.Seconds(),
						ms(ph.q(.5)), ms(ph.q(.99)), ms(ph.q(1)), ms(base.q(.5)), ms(base.q(.99)),
						ratio(ph.q(.5), base.q(.5)), ratio(ph.q(.99), base.q(.99)), lost, sendErr.Load(), baseLost, baseErr.Load(),
						drain.Round(time.Millisecond), ds/max(dc, 1), dc, maxBacklog, benchd.Loadavg())
					tag := fmt.Sprintf("@%g", rs.perSec)
					b.ReportMetric(float64(ph.q(.5))/1e6, "p50-ms"+tag)
					b.ReportMetric(float64(ph.q(.99))/1e6, "p99-ms"+tag)
					b.ReportMetric(float64(base.q(.5))/1e6, "bare-p50-ms"+tag)
					b.ReportMetric(float64(base.q(.99))/1e6, "bare-p99-ms"+tag)
					b.ReportMetric(float64(lost), "lost"+tag)
				}
			}
		})
	}
}

// sendTo sends message id from account i's peer to a bare client.
func (r *rig) sendTo(i int, c *whatsmeow.Client, id, text string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, err := r.srv.SendFromPeer(ctx, peerJID("4078810", i), c.Store.ID.ToNonAD(),
		&waE2E.Message{Conversation: proto.String(text)}, wafake.MessageOptions{ID: id})
	return err
}

func (r *rig) inbound(i int, text string) string {
	id := wafake.NewMessageID()
	if err := r.inboundID(i, id, text); err != nil {
		panic(err)
	}
	return id
}

func (r *rig) inboundID(i int, id, text string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, err := r.srv.SendFromPeer(ctx, peerJID("4078810", i), r.accts[i].Device.ToNonAD(),
		&waE2E.Message{Conversation: proto.String(text)}, wafake.MessageOptions{ID: id})
	return err
}
