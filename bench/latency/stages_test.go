package latency

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/wactl/wactl/bench/internal/benchd"
	"github.com/wactl/wactl/pkg/dedupe"
	wfs "github.com/wactl/wactl/pkg/store/firestore"
)

// Per-stage timings of one inbound message through wactl on the Firestore
// emulator (issue 21, the unexplained all-rates run), all taken from
// outside the daemon so that measuring changes nothing in it:
//
//	sent      the fake server begins SendFromPeer (the clock's start)
//	queued    SendFromPeer returned: encrypted, queued on the device's socket
//	built     wactl's store built the commit: the mapping document's
//	          expiresAt minus wfs.MappingTTL (the store's clock at the
//	          commit's building, after any read it needed)
//	committed the message document's update time (the emulator's clock,
//	          the same host's)
//	seen      the thread listener saw the document
//	receipt   the fake server received wactl's delivery receipt (sent after
//	          the handler returned, so after the commit's answer)
//
// queued→built holds the socket, the ingest gate, whatsmeow's queue and
// decryption, the handler and any read before the commit; built→committed
// is the commit's round trip up to the emulator applying it.

// logf prints a figure at once, with the time of day, on the benchmark's
// standard output (b.Logf keeps only a benchmark's last lines).
func logf(tb testing.TB, format string, args ...any) {
	tb.Helper()
	fmt.Printf("%s %s\n", time.Now().UTC().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// stageSet is the times one wactl phase collects per message id.
type stageSet struct {
	mu     sync.Mutex
	queued map[string]time.Time
}

func newStageSet() *stageSet { return &stageSet{queued: map[string]time.Time{}} }

func (s *stageSet) markQueued(id string, t time.Time) {
	s.mu.Lock()
	s.queued[id] = t
	s.mu.Unlock()
}

// built reads the mapping documents of ids (account index accountOf[id])
// and returns when the store built each commit.
func (r *rig) built(ids []string, accountOf map[string]int) map[string]time.Time {
	out := map[string]time.Time{}
	if r.fs == nil {
		return out
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for start := 0; start < len(ids); start += 300 {
		chunk := ids[start:min(start+300, len(ids))]
		refs := make([]*firestore.DocumentRef, len(chunk))
		for i, id := range chunk {
			refs[i] = r.fs.Collection("message_ids").Doc(dedupe.MappingDocID(r.accts[accountOf[id]].ID, id))
		}
		snaps, err := r.fs.GetAll(ctx, refs)
		if err != nil {
			return out
		}
		for i, s := range snaps {
			if !s.Exists() {
				continue
			}
			if exp, ok := s.Data()["expiresAt"].(time.Time); ok {
				out[chunk[i]] = exp.Add(-wfs.MappingTTL)
			}
		}
	}
	return out
}

// receipts returns when the fake received each id's first delivery receipt.
func (r *rig) receipts() map[string]time.Time {
	out := map[string]time.Time{}
	for _, rc := range r.srv.Receipts() {
		if rc.Type != "" && rc.Type != "inactive" { // "inactive": whatsmeow's delivery receipt while not marked online
			continue
		}
		if _, ok := out[rc.ID]; !ok {
			out[rc.ID] = rc.At
		}
	}
	return out
}

// stageReport is p50/p99 of each stage (between consecutive known times of
// the same message) and a timeline by send time.
func stageReport(ph *phase, st *stageSet, built, committed, seen, receipt map[string]time.Time) string {
	type span struct {
		name     string
		from, to func(id string) (time.Time, bool)
	}
	get := func(m map[string]time.Time) func(string) (time.Time, bool) {
		return func(id string) (time.Time, bool) { t, ok := m[id]; return t, ok }
	}
	st.mu.Lock()
	queued := st.queued
	st.mu.Unlock()
	ph.mu.Lock()
	start := ph.start
	ph.mu.Unlock()
	spans := []span{
		{"sent→queued (fake encrypts)", get(start), get(queued)},
		{"queued→built (socket, gate, whatsmeow queue+decrypt, handler, reads)", get(queued), get(built)},
		{"sent→built (the two above together; queued is when the bench goroutine resumed, after the node may already be read)", get(start), get(built)},
		{"built→committed (commit round trip to the emulator applying it)", get(built), get(committed)},
		{"committed→seen (listener)", get(committed), get(seen)},
		{"committed→receipt at fake (commit answer, handler return, receipt)", get(committed), get(receipt)},
	}
	var b strings.Builder
	for _, s := range spans {
		var d []time.Duration
		for id := range start {
			t0, ok0 := s.from(id)
			t1, ok1 := s.to(id)
			if ok0 && ok1 {
				d = append(d, t1.Sub(t0))
			}
		}
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		fmt.Fprintf(&b, "\n    %s: n %d p50 %s p99 %s max %s", s.name, len(d), ms(qd(d, .5)), ms(qd(d, .99)), ms(qd(d, 1)))
	}
	// Timeline: by send time, ten buckets (at least 250 ms each): how many
	// were sent, their p50 latency to seen, and p50 of queued→built.
	var first, last time.Time
	for _, t := range start {
		if first.IsZero() || t.Before(first) {
			first = t
		}
		if t.After(last) {
			last = t
		}
	}
	width := max(last.Sub(first)/10, 250*time.Millisecond)
	buckets := map[int][2][]time.Duration{}
	for id, t0 := range start {
		k := int(t0.Sub(first) / width)
		bk := buckets[k]
		if t1, ok := seen[id]; ok {
			bk[0] = append(bk[0], t1.Sub(t0))
		}
		tq, okq := queued[id]
		tb, okb := built[id]
		if okq && okb {
			bk[1] = append(bk[1], tb.Sub(tq))
		}
		buckets[k] = bk
	}
	keys := make([]int, 0, len(buckets))
	for k := range buckets {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	fmt.Fprintf(&b, "\n    timeline (send time from the first send; n, p50 to seen, p50 queued→built):")
	for _, k := range keys {
		bk := buckets[k]
		for i := range bk {
			sort.Slice(bk[i], func(x, y int) bool { return bk[i][x] < bk[i][y] })
		}
		fmt.Fprintf(&b, " [%.2fs %d %s %s]", (time.Duration(k) * width).Seconds(), len(bk[0]), ms(qd(bk[0], .5)), ms(qd(bk[1], .5)))
	}
	return b.String()
}

func qd(d []time.Duration, f float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := int(f*float64(len(d))+0.5) - 1
	return d[min(max(i, 0), len(d)-1)]
}

// metricsSampler polls the daemon's /metrics while a phase runs: the peak
// of wactl_ingest_inflight and of the journal backlog, and the ingest
// gate's counters at the start and the end.
type metricsSampler struct {
	d          *benchd.Daemon
	stop, done chan struct{}
	first      map[string]float64
	last       map[string]float64
	peak       map[string]float64
	polls      int
}

var sampled = []string{"wactl_ingest_inflight", "wactl_journal_backlog_messages", "wactl_ingest_blocked_total",
	"wactl_ingest_blocked_seconds_total", "wactl_ingest_stall_reliefs_total"}

func sampleMetrics(d *benchd.Daemon, every time.Duration) *metricsSampler {
	s := &metricsSampler{d: d, stop: make(chan struct{}), done: make(chan struct{}), peak: map[string]float64{}}
	s.first = d.Metrics()
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				m := d.Metrics()
				if m == nil {
					continue
				}
				s.polls++
				for _, k := range sampled {
					s.peak[k] = max(s.peak[k], m[k])
				}
			}
		}
	}()
	return s
}

// end stops polling and describes what it saw.
func (s *metricsSampler) end() string {
	close(s.stop)
	<-s.done
	s.last = s.d.Metrics()
	delta := func(k string) float64 { return s.last[k] - s.first[k] }
	return fmt.Sprintf("/metrics (%d polls): ingest inflight peak %g (limits account %g, overall %g), now %g; blocked +%g nodes, +%.2f s; stall reliefs +%g; journal backlog peak %g",
		s.polls, s.peak["wactl_ingest_inflight"], s.last[`wactl_ingest_inflight_limit{scope="account"}`], s.last[`wactl_ingest_inflight_limit{scope="overall"}`],
		s.last["wactl_ingest_inflight"], delta("wactl_ingest_blocked_total"), delta("wactl_ingest_blocked_seconds_total"),
		delta("wactl_ingest_stall_reliefs_total"), s.peak["wactl_journal_backlog_messages"])
}

// cpuMeter is the machine's and the daemon's CPU use over a phase
// (/proc/stat, /proc/<pid>/stat): whether the cores were saturated.
type cpuMeter struct {
	emu, emu0     float64
	emuPid        int
	pid           int
	busy0, total0 float64
	proc0         float64
	at            time.Time
}

func meterCPU(pid int) *cpuMeter {
	c := &cpuMeter{pid: pid, at: time.Now()}
	c.busy0, c.total0 = sysCPU()
	c.proc0 = procCPU(pid)
	c.emuPid = emulatorPid()
	if c.emuPid > 0 {
		c.emu0 = procCPU(c.emuPid)
	}
	return c
}

func (c *cpuMeter) end() string {
	busy, total := sysCPU()
	wall := time.Since(c.at).Seconds()
	frac := 0.0
	if total > c.total0 {
		frac = (busy - c.busy0) / (total - c.total0)
	}
	emu := "?"
	if c.emuPid > 0 {
		emu = fmt.Sprintf("%.2f", (procCPU(c.emuPid)-c.emu0)/wall)
	}
	return fmt.Sprintf("machine CPU busy %.0f%% of %d cores; wactl serve %.2f cores, emulator %s cores", 100*frac, ncpu(), (procCPU(c.pid)-c.proc0)/wall, emu)
}

// sysCPU is busy and total jiffies from /proc/stat's cpu line.
func sysCPU() (busy, total float64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	for i, v := range f[1:] {
		x, _ := strconv.ParseFloat(v, 64)
		total += x
		if i != 3 && i != 4 { // idle, iowait
			busy += x
		}
	}
	return busy, total
}

// procCPU is a process's user+system CPU seconds.
func procCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	k, _ := strconv.ParseFloat(f[12], 64)
	return (u + k) / 100 // USER_HZ
}

func ncpu() int {
	b, _ := os.ReadFile("/proc/stat")
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "cpu") && len(l) > 3 && l[3] >= '0' && l[3] <= '9' {
			n++
		}
	}
	return n
}

// emulatorPid finds the Firestore emulator this benchmark uses (a java
// process listening on FIRESTORE_EMULATOR_HOST's port); 0 if none.
func emulatorPid() int {
	host := os.Getenv("FIRESTORE_EMULATOR_HOST")
	_, port, ok := strings.Cut(host, ":")
	if !ok {
		return 0
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		cl := string(b)
		if strings.Contains(cl, "java") && strings.Contains(cl, "--port="+port+"\x00") {
			return pid
		}
	}
	return 0
}

// dumpGoroutines saves the daemon's goroutines (pprof debug=1: stacks with
// counts) as name in the profile directory, when profiling.
func (r *rig) dumpGoroutines(name string) {
	if r.pprof == "" {
		return
	}
	resp, err := http.Get("http://" + r.pprof + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		fmt.Printf("goroutine dump: %v\n", err)
		return
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	p := filepath.Join(r.profDir, name)
	if err := os.WriteFile(p, b, 0o600); err == nil {
		fmt.Printf("%s goroutine dump of wactl serve: %s\n", time.Now().UTC().Format("15:04:05"), p)
	}
}
