package daemon

import (
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types/events"
	waLog "go.mau.fi/whatsmeow/util/log"
)

// Ingest backpressure (issue 21 item 1).
//
// whatsmeow reads an account's socket on one goroutine and passes every
// node (message, receipt, notification...) to a queue of 2,048 that one
// goroutine drains through the event handlers; the handler records a
// message before it returns, so a slow store slows the draining. When the
// queue is full whatsmeow does not stop reading: it parks each further
// node in a goroutine of its own (client.go, handleFrame), so at a
// sustained rate above what the store takes, memory grows without bound.
//
// The gate stops the reading instead. whatsmeow logs every node it reads
// on its "Recv" logger, synchronously on the reading goroutine and before
// queueing it; the client's logger is wrapped so that this call waits
// while the account's queue holds ingestLimits.perAccount nodes or all
// accounts' queues together hold ingestLimits.overall. While it waits
// nothing more is read from that socket: TCP's window closes and WhatsApp
// keeps the messages, which it has not been sent receipts for (a message's
// receipt goes only after it is recorded), until the store catches up.
// Nothing is dropped or acknowledged early.
//
// Costs and limits: a node waiting at the gate also holds back the replies
// behind it on the socket (keepalive pongs, IQ results); whatsmeow
// disconnects after its keepalive has failed for its maximum fail time,
// and the daemon reconnects (connect.go), so a store stalled for minutes
// turns into a reconnect, not a pile of goroutines. The queue length is
// read by reflection (an unexported field): TestIngestGateSeesWhatsmeowQueue
// fails if a whatsmeow upgrade renames it, and without it the gate stays
// open (the old behaviour) rather than blocking.
var ingestLimits = struct {
	perAccount atomic.Int64
	overall    atomic.Int64
}{}

func init() {
	ingestLimits.perAccount.Store(512)   // a quarter of whatsmeow's queue
	ingestLimits.overall.Store(16 << 10) // ~16k nodes of a few KB: tens of MB
}

// ingest is the process's gate: the overall bound is the process's memory.
var ingest = &ingestGate{clients: map[*gatedClient]struct{}{}}

type ingestGate struct {
	mu      sync.Mutex
	clients map[*gatedClient]struct{} // connected clients that have read a node

	blockedNanos atomic.Int64 // time readers waited at the gate
	blocks       atomic.Int64 // nodes that had to wait
	reliefs      atomic.Int64 // nodes let through by stallRelief
	now          func() time.Time
	sleep        func(time.Duration)
}

// gatedClient is one whatsmeow client behind the gate.
type gatedClient struct {
	account string
	queue   atomic.Pointer[reflect.Value] // cli.handlerQueue; nil: no gate
	// live: the client has a socket that may still deliver. It is kept by
	// the daemon (setLive) rather than asked of whatsmeow: Client.IsConnected
	// reads FrameSocket.conn without the lock FrameSocket.Close writes it
	// under, and the gate asks on every node, so `go test -race` caught
	// the read pump's close racing it (CI, TestRestoreRecordAndRestart).
	live atomic.Bool
	// connectedFn replaces live in tests.
	connectedFn func() bool
}

func (c *gatedClient) connected() bool {
	if c.connectedFn != nil {
		return c.connectedFn()
	}
	return c.live.Load()
}

// setLive marks cli's socket as one that may deliver (before a connect)
// or as gone (before wactl disconnects it, and on every event whatsmeow
// emits when a socket ends), so that a reader waiting at the gate for a
// socket that will never drain stops waiting and the socket's queue stops
// counting against the others'. A client made without the gate is left
// alone.
func setLive(cli *whatsmeow.Client, live bool) {
	if cli == nil {
		return
	}
	if l, ok := cli.Log.(*gatedLogger); ok {
		l.c.live.Store(live)
	}
}

// socketEnded reports whether whatsmeow emits evt when a client's socket
// has ended or is about to be closed without a new connect.
func socketEnded(evt any) bool {
	switch evt.(type) {
	case *events.Disconnected, *events.LoggedOut, *events.StreamReplaced,
		*events.StreamError, *events.TemporaryBan, *events.ClientOutdated,
		*events.ConnectFailure, *events.ManualLoginReconnect, *events.CATRefreshError:
		return true
	}
	return false
}

// len is the number of nodes in the client's handler queue.
func (c *gatedClient) len() int {
	q := c.queue.Load()
	if q == nil {
		return 0
	}
	return q.Len()
}

// ingestLogger wraps the logger a client is made with; attach the client
// to it once made.
func ingestLogger(base waLog.Logger, account string) *gatedLogger {
	return &gatedLogger{Logger: base, c: &gatedClient{account: account}}
}

// gatedLogger is a client's logger: its "Recv" logger is the gate.
type gatedLogger struct {
	waLog.Logger
	c *gatedClient
}

func (l *gatedLogger) Sub(module string) waLog.Logger {
	sub := l.Logger.Sub(module)
	if module == "Recv" {
		return &recvGate{Logger: sub, c: l.c}
	}
	return sub
}

// attach finds cli's handler queue; without it the gate stays open.
func (l *gatedLogger) attach(cli *whatsmeow.Client) {
	if q, ok := handlerQueueOf(cli); ok {
		l.c.queue.Store(&q)
	}
}

func handlerQueueOf(cli *whatsmeow.Client) (reflect.Value, bool) {
	if cli == nil {
		return reflect.Value{}, false
	}
	q := reflect.ValueOf(cli).Elem().FieldByName("handlerQueue")
	if !q.IsValid() || q.Kind() != reflect.Chan {
		return reflect.Value{}, false
	}
	return q, true
}

// recvGate is the "Recv" logger: whatsmeow calls Debugf("%s", node) for
// every node it reads, before queueing it.
type recvGate struct {
	waLog.Logger
	c *gatedClient
}

func (r *recvGate) Debugf(msg string, args ...any) {
	if len(args) == 1 {
		if s, ok := args[0].(string); ok && queuedTag(s) {
			ingest.admit(r.c)
		}
	}
	r.Logger.Debugf(msg, args...)
}

// queuedTag reports whether a node (as XML) is one whatsmeow queues for
// the handlers and that WhatsApp sends in volume. IQ results, acks and the
// stream's own nodes (success, failure, stream:error, ib) pass at once.
func queuedTag(xml string) bool {
	for _, tag := range [...]string{"message", "receipt", "notification", "call", "presence", "chatstate"} {
		if len(xml) > len(tag)+1 && xml[0] == '<' && xml[1:1+len(tag)] == tag {
			switch xml[1+len(tag)] {
			case ' ', '>', '/':
				return true
			}
		}
	}
	return false
}

// stallRelief: when an account's queue has not gone down for this long
// while its reader waits, the handler is most likely waiting for a reply
// from WhatsApp (an IQ: prekey upload, device list) that sits behind the
// held node on the socket. One more node is then read, so that the replies
// behind it get through, up to twice the per-account bound (still far
// from whatsmeow's 2,048); otherwise the handler would wait for its
// request timeout (75 s) with the socket held.
const stallRelief = time.Second

// admit returns when c may queue one more node: its queue is under the
// per-account bound and all queues together under the overall one, or c
// is no longer connected (whatsmeow then drops the node with the socket),
// or its queue has not moved for stallRelief (see there).
func (g *ingestGate) admit(c *gatedClient) {
	if c.queue.Load() == nil {
		return
	}
	g.register(c)
	if g.open(c) {
		return
	}
	now, sleep := g.clock()
	start := now()
	g.blocks.Add(1)
	wait := 500 * time.Microsecond
	last, moved := c.len(), start
	for !g.open(c) {
		if !c.connected() {
			break
		}
		t := now()
		if n := c.len(); n < last {
			last, moved = n, t
		} else if t.Sub(moved) >= stallRelief && int64(n) < 2*ingestLimits.perAccount.Load() {
			g.reliefs.Add(1)
			break
		}
		sleep(wait)
		if wait < 10*time.Millisecond {
			wait *= 2
		}
	}
	g.blockedNanos.Add(int64(now().Sub(start)))
}

func (g *ingestGate) clock() (func() time.Time, func(time.Duration)) {
	now, sleep := g.now, g.sleep
	if now == nil {
		now = time.Now
	}
	if sleep == nil {
		sleep = time.Sleep
	}
	return now, sleep
}

func (g *ingestGate) register(c *gatedClient) {
	g.mu.Lock()
	g.clients[c] = struct{}{}
	g.mu.Unlock()
}

func (g *ingestGate) open(c *gatedClient) bool {
	if int64(c.len()) >= ingestLimits.perAccount.Load() {
		return false
	}
	return int64(g.inflight()) < ingestLimits.overall.Load()
}

// inflight is the number of nodes queued in all connected clients. A
// client that is no longer connected leaves the set (its queue is dropped
// with it or drained after a reconnect, when it registers again).
func (g *ingestGate) inflight() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for c := range g.clients {
		if !c.connected() {
			delete(g.clients, c)
			continue
		}
		n += c.len()
	}
	return n
}

// ingestCollector puts the gate on /metrics.
type ingestCollector struct{ inflight, limit, blockedSecs, blocked, reliefs *prometheus.Desc }

func newIngestCollector() *ingestCollector {
	return &ingestCollector{
		inflight: prometheus.NewDesc("wactl_ingest_inflight",
			"Nodes read from WhatsApp (messages, receipts, notifications) queued for the event handler, all accounts.", nil, nil),
		limit: prometheus.NewDesc("wactl_ingest_inflight_limit",
			"Bound on queued nodes: per account, and overall; at the bound wactl stops reading the socket.", []string{"scope"}, nil),
		blockedSecs: prometheus.NewDesc("wactl_ingest_blocked_seconds_total",
			"Time sockets were not read because the queues were at their bound (backpressure).", nil, nil),
		blocked: prometheus.NewDesc("wactl_ingest_blocked_total",
			"Nodes that waited at the bound before being queued.", nil, nil),
		reliefs: prometheus.NewDesc("wactl_ingest_stall_reliefs_total",
			"Nodes read past the bound because the account's queue had not moved for a second (its handler waiting on WhatsApp).", nil, nil),
	}
}

func (c *ingestCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.inflight
	ch <- c.limit
	ch <- c.blockedSecs
	ch <- c.blocked
	ch <- c.reliefs
}

func (c *ingestCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(c.inflight, prometheus.GaugeValue, float64(ingest.inflight()))
	ch <- prometheus.MustNewConstMetric(c.limit, prometheus.GaugeValue, float64(ingestLimits.perAccount.Load()), "account")
	ch <- prometheus.MustNewConstMetric(c.limit, prometheus.GaugeValue, float64(ingestLimits.overall.Load()), "overall")
	ch <- prometheus.MustNewConstMetric(c.blockedSecs, prometheus.CounterValue, time.Duration(ingest.blockedNanos.Load()).Seconds())
	ch <- prometheus.MustNewConstMetric(c.blocked, prometheus.CounterValue, float64(ingest.blocks.Load()))
	ch <- prometheus.MustNewConstMetric(c.reliefs, prometheus.CounterValue, float64(ingest.reliefs.Load()))
}
