package latency

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
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
			// Two more references, on by default in the embedded run
			// (WACTL_BENCH_LEG=1 adds them to the Firestore run; 0 drops
			// them), from the same messages to 20 bare whatsmeow clients
			// paired on the same fake, in this process:
			//   - the WhatsApp leg alone: the handler only notes the arrival;
			//   - the WhatsApp leg + the bare write: the handler writes the
			//     baseline's document (as the bare client does) before it
			//     returns, and the baseline's reader sees it — everything
			//     wactl's path must do, with nothing of wactl's own.
			// Their decrypted-event buffer is on, as in wactl (whatsmeow
			// then keeps each plaintext in its session store until the
			// handler succeeds: its own work per message, not wactl's).
			var wm []*whatsmeow.Client
			wmSeen := newArrivals()
			var legWrite atomic.Bool
			if legOn(backend) {
				wm = bareClients(b, r)
				for i, c := range wm {
					c.EnableDecryptedEventBuffer = true
					c.AddEventHandler(func(evt any) {
						if m, ok := evt.(*events.Message); ok {
							wmSeen.mark(m.Info.ID, time.Now())
							if legWrite.Load() {
								bl.write(i, m.Info.ID)
							}
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
					logf(b, "load average before %g msg/s: %s", rs.perSec, benchd.Loadavg())
					base, baseW := newPhase(), newPhase() // clock from the due time; from the write's start (before 2026-12-04 11:00)
					var baseErr atomic.Int64
					baseCPU := meterCPU(r.d.Cmd.Process.Pid)
					span := pace(bareSpec(rs), accountsN, func(w, k int, due time.Time) {
						id := fmt.Sprintf("BASE%06d%s", k, wafake.NewMessageID()[4:])
						base.began(id, due)
						baseW.began(id, time.Now())
						if bl.write(w, id) != nil {
							baseErr.Add(1)
						}
					})
					bl.seen.waitAll(base.ids(), 60*time.Second)
					baseLost := base.collect(bl.seen.get)
					baseW.collect(bl.seen.get)
					logf(b, "%s %g msg/s: bare write phase: p50 %s p99 %s from the due time (from the write's start: p50 %s p99 %s), achieved %.0f/s; %s; load %s",
						backend, rs.perSec, ms(base.q(.5)), ms(base.q(.99)), ms(baseW.q(.5)), ms(baseW.q(.99)), float64(len(base.start))/span.Seconds(), baseCPU.end(), benchd.Loadavg())

					var legP50, legWP50, legWP99 time.Duration
					if wm != nil {
						leg := newPhase()
						pace(rs, accountsN, func(w, k int, due time.Time) {
							id := wafake.NewMessageID()
							leg.began(id, due)
							r.sendTo(w, wm[w], id, fmt.Sprintf("bench %d", k))
						})
						wmSeen.waitAll(leg.ids(), 60*time.Second)
						legLost := leg.collect(wmSeen.get)
						legP50 = leg.q(.5)
						logf(b, "%s %g msg/s: WhatsApp leg alone (fake → bare whatsmeow client's event handler): p50 %s p99 %s, not received %d",
							backend, rs.perSec, ms(leg.q(.5)), ms(leg.q(.99)), legLost)

						legWrite.Store(true)
						lw := newPhase()
						lwSpan := pace(rs, accountsN, func(w, k int, due time.Time) {
							id := wafake.NewMessageID()
							lw.began(id, due)
							r.sendTo(w, wm[w], id, fmt.Sprintf("bench %d", k))
						})
						bl.seen.waitAll(lw.ids(), 60*time.Second)
						legWrite.Store(false)
						lwLost := lw.collect(bl.seen.get)
						legWP50, legWP99 = lw.q(.5), lw.q(.99)
						logf(b, "%s %g msg/s: WhatsApp leg + bare write (fake → bare client's handler writes the baseline document → reader): p50 %s p99 %s (achieved %.0f/s), not readable %d; load %s",
							backend, rs.perSec, ms(lw.q(.5)), ms(lw.q(.99)), float64(len(lw.start))/lwSpan.Seconds(), lwLost, benchd.Loadavg())
					}

					ph := newPhase()
					stages := newStageSet()
					accountOf := map[string]int{}
					var accMu sync.Mutex
					var sendErr atomic.Int64
					smp := sampleMetrics(r.d, 100*time.Millisecond)
					cpu := meterCPU(r.d.Cmd.Process.Pid)
					before := r.d.Metrics()
					span2 := pace(rs, accountsN, func(w, k int, due time.Time) {
						id := wafake.NewMessageID()
						accMu.Lock()
						accountOf[id] = w
						accMu.Unlock()
						ph.began(id, due)
						if r.inboundID(w, id, fmt.Sprintf("bench %d", k)) != nil {
							sendErr.Add(1)
						}
						stages.markQueued(id, time.Now())
					})
					drainStart := time.Now()
					if r.pprof != "" {
						// Where the daemon's goroutines wait while it is
						// behind: two dumps, 1 s and 3 s into the drain.
						go func() {
							for _, at := range []time.Duration{time.Second, 3 * time.Second} {
								time.Sleep(time.Until(drainStart.Add(at)))
								r.dumpGoroutines(fmt.Sprintf("goroutines-%s-%g-%s.txt", backend, rs.perSec, time.Now().UTC().Format("150405")))
							}
						}()
					}
					seen.waitAll(ph.ids(), waitFor())
					drain := time.Since(drainStart)
					cpuUse := cpu.end()
					metr := smp.end()
					after := r.d.Metrics()
					lost := ph.collect(seen.get)
					n := len(ph.start)
					dc := after["wactl_live_message_delay_seconds_count"] - before["wactl_live_message_delay_seconds_count"]
					ds := after["wactl_live_message_delay_seconds_sum"] - before["wactl_live_message_delay_seconds_sum"]
					floor := ""
					if legWP50 > 0 {
						floor = fmt.Sprintf(" | against the WhatsApp leg + bare write: ratio p50 %s p99 %s (leg alone p50 %s)",
							ratio(ph.q(.5), legWP50), ratio(ph.q(.99), legWP99), ms(legP50))
					}
					logf(b, "%s %g msg/s: %d msgs offered in %.1fs (achieved %.0f/s; baseline %.0f/s); "+
						"wactl p50 %s p99 %s max %s | bare p50 %s p99 %s | ratio p50 %s p99 %s%s | lost %d (send errors %d), baseline lost %d (errors %d); "+
						"drain after last send %s; live delay mean %.2fs over %g msgs; %s; %s; load %s",
						backend, rs.perSec, n, span2.Seconds(), float64(n)/span2.Seconds(), float64(len(base.start))/span.Seconds(),
						ms(ph.q(.5)), ms(ph.q(.99)), ms(ph.q(1)), ms(base.q(.5)), ms(base.q(.99)),
						ratio(ph.q(.5), base.q(.5)), ratio(ph.q(.99), base.q(.99)), floor, lost, sendErr.Load(), baseLost, baseErr.Load(),
						drain.Round(time.Millisecond), ds/max(dc, 1), dc, metr, cpuUse, benchd.Loadavg())
					if r.fs != nil {
						sn, ver := seen.snapshot()
						logf(b, "%s %g msg/s: stages of wactl's messages:%s", backend, rs.perSec,
							stageReport(ph, stages, r.built(ph.ids(), accountOf), ver, sn, r.receipts()))
					}
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

// legOn: the WhatsApp-leg references run by default on the embedded store
// only (they add two phases before wactl's; WACTL_BENCH_LEG=1/0 decides).
func legOn(backend string) bool {
	switch os.Getenv("WACTL_BENCH_LEG") {
	case "1":
		return true
	case "0":
		return false
	}
	return backend == "embedded"
}

// waitFor is how long a phase waits for its last document after its last
// send (WACTL_BENCH_DRAIN_SECS; 120 s by default).
func waitFor() time.Duration {
	if v, err := time.ParseDuration(os.Getenv("WACTL_BENCH_DRAIN_SECS") + "s"); err == nil && v > 0 {
		return v
	}
	return 120 * time.Second
}

// bareSpec is the bare write phase's rate and length: rs, held at most
// WACTL_BENCH_BARE_SECS seconds when set (a long 1,000 msg/s run into the
// emulator would otherwise spend many minutes on its baseline alone).
func bareSpec(rs rateSpec) rateSpec {
	if v, err := strconv.ParseFloat(os.Getenv("WACTL_BENCH_BARE_SECS"), 64); err == nil && v > 0 {
		rs.secs = min(rs.secs, v)
	}
	return rs
}
