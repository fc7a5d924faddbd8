package wafake

import (
	"bytes"
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
)

// ConnRecord describes one websocket connection the fake accepted. Daemon
// tests use the records to prove that two connections of one device never
// overlapped.
type ConnRecord struct {
	ID int
	// Device is the logged-in device JID; empty for a connection that only
	// showed QR codes (it becomes the new JID if pairing succeeded on it).
	Device types.JID
	// Pairing is true for a connection that came without a stored identity.
	Pairing bool
	Opened  time.Time
	// LoggedIn is when <success> was sent; zero if login was refused.
	LoggedIn time.Time
	// Closed is zero while the connection is open.
	Closed time.Time
	// Outcome says how the connection ended ("client closed", "replaced",
	// "failure 401", "stream error 515", "dropped", "pair timeout", ...).
	Outcome string
	// Replaced is when a newer login of the device took its place: from
	// then on the server routes nothing to it, whatever its socket does
	// (a paused client closes it late).
	Replaced time.Time
	// Client is the connecting process's EnvClientTag, if any.
	Client string
}

// Open reports whether the connection is still open.
func (r ConnRecord) Open() bool { return r.Closed.IsZero() }

type conn struct {
	srv    *Server
	id     int
	t      *transport
	cancel context.CancelFunc
	done   chan struct{}
	client string // EnvClientTag of the connecting process

	jid     types.JID // set at login, or at pairing
	refs    []string
	stalled atomic.Bool

	mu       sync.Mutex
	outcome  string
	waiters  map[string]chan *waBinary.Node // our IQ id -> client's answer
	loggedIn bool
	idSeq    atomic.Int64
	link     *linkCode // pending pair-code registration
}

// Connections returns a copy of every connection record, oldest first.
func (s *Server) Connections() []ConnRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ConnRecord(nil), s.records...)
}

// DeviceConnections returns the records of one device, oldest first.
func (s *Server) DeviceConnections(jid types.JID) []ConnRecord {
	var out []ConnRecord
	for _, r := range s.Connections() {
		if r.Device == jid {
			out = append(out, r)
		}
	}
	return out
}

// MaxConcurrent is the largest number of connections of one device (logged
// in, not yet closed) that were ever open at the same time.
func (s *Server) MaxConcurrent(jid types.JID) int {
	type ev struct {
		t     time.Time
		delta int
	}
	var evs []ev
	for _, r := range s.DeviceConnections(jid) {
		if r.LoggedIn.IsZero() {
			continue
		}
		evs = append(evs, ev{r.LoggedIn, 1})
		if !r.Closed.IsZero() {
			evs = append(evs, ev{r.Closed, -1})
		}
	}
	// Closings sort before openings at the same instant.
	for i := 1; i < len(evs); i++ {
		for j := i; j > 0 && (evs[j].t.Before(evs[j-1].t) || (evs[j].t.Equal(evs[j-1].t) && evs[j].delta < evs[j-1].delta)); j-- {
			evs[j], evs[j-1] = evs[j-1], evs[j]
		}
	}
	cur, best := 0, 0
	for _, e := range evs {
		cur += e.delta
		best = max(best, cur)
	}
	return best
}

// WaitAllClosed blocks until the fake has no open connection left, e.g.
// after a daemon under test stopped.
func (s *Server) WaitAllClosed(ctx context.Context) error {
	return s.waitFor(ctx, func() bool { return len(s.conns) == 0 })
}

// WaitLoggedIn blocks until the device has a logged-in connection.
func (s *Server) WaitLoggedIn(ctx context.Context, jid types.JID) error {
	return s.waitFor(ctx, func() bool { return s.live[jid] != nil })
}

// IsLive reports whether the device currently has a logged-in connection.
func (s *Server) IsLive(jid types.JID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.live[jid] != nil
}

func (c *conn) run(ctx context.Context) error {
	s := c.srv
	s.mu.Lock()
	s.records = append(s.records, ConnRecord{ID: c.id, Opened: time.Now(), Client: c.client})
	s.notifyLocked()
	s.mu.Unlock()

	hctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	err := c.t.handshake(hctx, s.static, s.chain)
	cancel()
	if err != nil {
		c.setOutcome("handshake failed: " + err.Error())
		return err
	}
	if c.t.payload.Username != nil {
		c.login(ctx)
	} else {
		c.startPairing(ctx)
	}
	for {
		frame, err := c.t.readFrame(ctx)
		if err != nil {
			return err
		}
		data, err := waBinary.Unpack(frame)
		if err != nil {
			continue
		}
		node, err := waBinary.Unmarshal(data)
		if err != nil {
			continue
		}
		if c.stalled.Load() {
			continue
		}
		c.handle(ctx, node)
	}
}

// device is the connection's device JID (empty while pairing).
func (c *conn) device() types.JID {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.jid
}

func (c *conn) setOutcome(o string) {
	c.mu.Lock()
	if c.outcome == "" {
		c.outcome = o
	}
	c.mu.Unlock()
}

func (c *conn) finish(err error) {
	c.setOutcome("client closed")
	c.mu.Lock()
	outcome := c.outcome
	for id, w := range c.waiters {
		close(w)
		delete(c.waiters, id)
	}
	jid := c.jid
	c.mu.Unlock()
	_ = c.t.ws.CloseNow()
	s := c.srv
	s.mu.Lock()
	delete(s.conns, c.id)
	if s.live[jid] == c {
		delete(s.live, jid)
	}
	for i := range s.records {
		if s.records[i].ID == c.id {
			if s.records[i].Closed.IsZero() { // drop() may have stamped it already
				s.records[i].Closed = time.Now()
			}
			s.records[i].Outcome = outcome
			if s.records[i].Device.IsEmpty() {
				s.records[i].Device = jid
			}
		}
	}
	s.notifyLocked()
	s.mu.Unlock()
	close(c.done)
}

// drop closes the socket without a goodbye, like a network failure.
func (c *conn) drop() {
	c.setOutcome("dropped")
	// The connection is closed from this moment: stamp it before the socket
	// goes, so a client that reconnects faster than this connection's
	// goroutine winds down is not counted as overlapping it.
	s := c.srv
	s.mu.Lock()
	for i := range s.records {
		if s.records[i].ID == c.id && s.records[i].Closed.IsZero() {
			s.records[i].Closed = time.Now()
		}
	}
	s.mu.Unlock()
	_ = c.t.ws.CloseNow()
	c.cancel()
}

// closeAfterGrace closes the socket a little after a terminal node, like the
// real server does, unless the client closed it first.
func (c *conn) closeAfterGrace(outcome string) {
	c.setOutcome(outcome)
	go func() {
		select {
		case <-c.done:
		case <-time.After(c.srv.opts.CloseGrace):
			_ = c.t.ws.Close(4000, "")
			c.cancel()
		}
	}()
}

func (c *conn) send(node waBinary.Node) error {
	if c.stalled.Load() {
		return nil // a stalled server says nothing at all
	}
	data, err := waBinary.Marshal(node)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.t.writeFrame(ctx, data)
}

func (c *conn) newID() string {
	return "fake-" + strconv.Itoa(c.id) + "-" + strconv.FormatInt(c.idSeq.Add(1), 10)
}

// request sends an IQ to the client and returns a channel for its answer.
func (c *conn) request(node waBinary.Node) (string, <-chan *waBinary.Node, error) {
	id := c.newID()
	node.Attrs["id"] = id
	ch := make(chan *waBinary.Node, 1)
	c.mu.Lock()
	if c.waiters == nil {
		c.waiters = map[string]chan *waBinary.Node{}
	}
	c.waiters[id] = ch
	c.mu.Unlock()
	if err := c.send(node); err != nil {
		c.mu.Lock()
		delete(c.waiters, id)
		c.mu.Unlock()
		return "", nil, err
	}
	return id, ch, nil
}

func (c *conn) failure(reason int, extra waBinary.Attrs) {
	attrs := waBinary.Attrs{"reason": strconv.Itoa(reason)}
	for k, v := range extra {
		attrs[k] = v
	}
	_ = c.send(waBinary.Node{Tag: "failure", Attrs: attrs})
	c.closeAfterGrace("failure " + strconv.Itoa(reason))
}

func (c *conn) streamError(code string, conflict string) {
	n := waBinary.Node{Tag: "stream:error", Attrs: waBinary.Attrs{}}
	if code != "" {
		n.Attrs["code"] = code
	}
	if conflict != "" {
		n.Content = []waBinary.Node{{Tag: "conflict", Attrs: waBinary.Attrs{"type": conflict}}}
	}
	_ = c.send(n)
	outcome := "stream error " + code
	if conflict != "" {
		outcome = conflict
	}
	c.closeAfterGrace(outcome)
}

func (c *conn) login(ctx context.Context) {
	s := c.srv
	p := c.t.payload
	jid := types.JID{User: strconv.FormatUint(p.GetUsername(), 10), Device: uint16(p.GetDevice()), Server: types.DefaultUserServer}
	c.mu.Lock()
	c.jid = jid
	c.mu.Unlock()
	s.mu.Lock()
	for i := range s.records {
		if s.records[i].ID == c.id {
			s.records[i].Device = jid
		}
	}
	dev := s.devices[jid]
	switch {
	case s.outdated || (dev != nil && dev.outdated):
		s.mu.Unlock()
		c.failure(405, nil)
		return
	case dev != nil && dev.removed:
		s.mu.Unlock()
		c.failure(401, nil)
		return
	case dev != nil && dev.banned:
		s.mu.Unlock()
		c.failure(402, waBinary.Attrs{"code": "101", "expire": strconv.Itoa(int(dev.banExpire.Seconds()))})
		return
	case dev != nil && !bytes.Equal(dev.noiseKey, c.t.clientKey):
		s.mu.Unlock()
		c.failure(401, nil)
		return
	}
	if dev == nil {
		// A device paired against another fake instance (or a restarted one):
		// accept it as the real server would accept a known device.
		dev = s.registerDeviceLocked(jid, c.t.clientKey, nil)
	}
	old := s.live[jid]
	s.live[jid] = c
	now := time.Now()
	for i := range s.records {
		if s.records[i].ID == c.id {
			s.records[i].LoggedIn = now
		}
		if old != nil && s.records[i].ID == old.id {
			s.records[i].Replaced = now
		}
	}
	pending := dev.pendingNodes()
	for _, p := range dev.pending {
		s.sendCount[jid.String()+"|"+p.id]++
	}
	s.notifyLocked()
	s.mu.Unlock()
	if old != nil {
		old.streamError("", "replaced")
	}
	c.mu.Lock()
	c.loggedIn = true
	c.mu.Unlock()
	_ = c.send(waBinary.Node{Tag: "success", Attrs: waBinary.Attrs{
		"t":        strconv.FormatInt(time.Now().Unix(), 10),
		"lid":      dev.lid,
		"location": "wafake",
		"props":    "1",
		"creation": strconv.FormatInt(time.Now().Unix(), 10),
	}})
	for _, n := range pending {
		_ = c.send(n)
	}
	_ = c.send(waBinary.Node{Tag: "ib", Attrs: waBinary.Attrs{"from": types.ServerJID}, Content: []waBinary.Node{
		{Tag: "offline", Attrs: waBinary.Attrs{"count": strconv.Itoa(len(pending))}},
	}})
}

func (c *conn) handle(ctx context.Context, node *waBinary.Node) {
	switch node.Tag {
	case "iq":
		c.handleIQ(ctx, node)
	case "message":
		c.handleClientMessage(ctx, node)
	case "receipt":
		c.handleReceipt(node)
	case "ack":
		id, _ := node.Attrs["id"].(string)
		switch cls, _ := node.Attrs["class"].(string); cls {
		case "message":
			c.srv.markDelivered(c.device(), id, "ack")
		case "receipt":
			typ, _ := node.Attrs["type"].(string)
			c.srv.markDelivered(c.device(), receiptKey(id, typ), "ack")
		}
	}
}

func (c *conn) handleReceipt(node *waBinary.Node) {
	id, _ := node.Attrs["id"].(string)
	typ, _ := node.Attrs["type"].(string)
	c.srv.logReceipt(Receipt{Device: c.device(), ID: id, Type: typ, At: time.Now()})
	if typ == "retry" {
		c.srv.answerRetry(context.Background(), c.device(), node) // retry.go
		return
	}
	if c.srv.historyReceipt(c.device(), id, typ) {
		return
	}
	switch typ {
	case "", "inactive", "sender", "peer_msg", "hist_sync":
		c.srv.markDelivered(c.device(), id, "receipt "+typ)
	}
	list := node.GetChildByTag("list")
	for _, item := range list.GetChildren() {
		if itemID, ok := item.Attrs["id"].(string); ok && typ == "" {
			c.srv.markDelivered(c.device(), itemID, "receipt")
		}
	}
}

func (c *conn) result(node *waBinary.Node, content ...waBinary.Node) {
	n := waBinary.Node{Tag: "iq", Attrs: waBinary.Attrs{
		"id": node.Attrs["id"], "type": "result", "from": types.ServerJID,
	}}
	if len(content) > 0 {
		n.Content = content
	}
	_ = c.send(n)
}

func (c *conn) iqError(node *waBinary.Node, code int, text string) {
	_ = c.send(waBinary.Node{Tag: "iq", Attrs: waBinary.Attrs{
		"id": node.Attrs["id"], "type": "error", "from": types.ServerJID,
	}, Content: []waBinary.Node{{Tag: "error", Attrs: waBinary.Attrs{"code": strconv.Itoa(code), "text": text}}}})
}

func (c *conn) handleIQ(ctx context.Context, node *waBinary.Node) {
	id, _ := node.Attrs["id"].(string)
	typ, _ := node.Attrs["type"].(string)
	if typ == "result" || typ == "error" {
		c.mu.Lock()
		w := c.waiters[id]
		delete(c.waiters, id)
		c.mu.Unlock()
		if w != nil {
			w <- node
		}
		return
	}
	xmlns, _ := node.Attrs["xmlns"].(string)
	switch xmlns {
	case "w:p", "passive", "urn:xmpp:ping":
		c.result(node)
	case "encrypt":
		c.handleEncryptIQ(node)
	case "w:m":
		c.handleMediaConn(node)
	case "usync":
		c.handleUsync(node)
	case "md":
		if reg, ok := node.GetOptionalChildByTag("link_code_companion_reg"); ok {
			c.handleLinkCode(node, &reg)
			return
		}
		if rm, ok := node.GetOptionalChildByTag("remove-companion-device"); ok {
			c.srv.removeDevice(rm.AttrGetter().JID("jid"))
		}
		c.result(node)
	default:
		c.srv.mu.Lock()
		c.srv.unknownIQs = append(c.srv.unknownIQs, xmlns+"/"+typ)
		c.srv.mu.Unlock()
		c.iqError(node, 501, "feature-not-implemented")
	}
}

// UnknownIQs lists the namespaces of queries the fake answered with 501,
// which helps when a new client version starts asking something new.
func (s *Server) UnknownIQs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.unknownIQs...)
}
