package wafake

import (
	"encoding/binary"
	"strconv"
	"time"

	"go.mau.fi/libsignal/ecc"
	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/util/keys"
)

// account is one phone number: its primary phone (a fake peer whose identity
// key signs companion devices) and its companion devices.
type account struct {
	phone      string
	lid        types.JID
	phoneDev   *peer
	nextDevice uint16
}

// device is what the fake knows about one companion device (one whatsmeow
// store): its keys, faults in force and messages not yet acknowledged.
type device struct {
	jid      types.JID
	lid      types.JID
	noiseKey []byte

	identity []byte
	regID    uint32
	skey     *keys.PreKey
	prekeys  []*keys.PreKey // uploaded, not yet handed out

	removed   bool
	banned    bool
	banExpire time.Duration
	outdated  bool

	pending []*pendingMsg
}

type pendingMsg struct {
	id   string
	node waBinary.Node
}

func (d *device) pendingNodes() []waBinary.Node {
	out := make([]waBinary.Node, len(d.pending))
	for i, p := range d.pending {
		out[i] = p.node
	}
	return out
}

// lidFor derives a stable LID from the phone number, so that a session
// paired against one fake instance keeps a consistent LID on another.
func lidFor(phone string) types.JID {
	return types.JID{User: "9" + phone, Server: types.HiddenUserServer}
}

func (s *Server) accountLocked(phone string) *account {
	a := s.accounts[phone]
	if a == nil {
		a = &account{phone: phone, lid: lidFor(phone), nextDevice: 1}
		pj := types.JID{User: phone, Server: types.DefaultUserServer}
		a.phoneDev = &peer{jid: pj, store: newSignalStore(nil)}
		s.peers[pj] = a.phoneDev
		s.accounts[phone] = a
	}
	return a
}

func (s *Server) registerDeviceLocked(jid types.JID, noiseKey []byte, reg *registration) *device {
	a := s.accountLocked(jid.User)
	if jid.Device >= a.nextDevice {
		a.nextDevice = jid.Device + 1
	}
	lid := a.lid
	lid.Device = jid.Device
	d := &device{jid: jid, lid: lid, noiseKey: noiseKey}
	if reg != nil {
		d.identity, d.regID, d.skey = reg.identity, reg.regID, reg.skey
	}
	s.devices[jid] = d
	return d
}

type registration struct {
	identity []byte
	regID    uint32
	skey     *keys.PreKey
}

func (c *conn) handleEncryptIQ(node *waBinary.Node) {
	s := c.srv
	typ, _ := node.Attrs["type"].(string)
	if _, ok := node.GetOptionalChildByTag("count"); ok && typ == "get" {
		me := c.device()
		s.mu.Lock()
		n := 0
		if d := s.devices[me]; d != nil {
			n = len(d.prekeys)
		}
		s.mu.Unlock()
		c.result(node, waBinary.Node{Tag: "count", Attrs: waBinary.Attrs{"value": strconv.Itoa(n)}})
		return
	}
	if keyNode, ok := node.GetOptionalChildByTag("key"); ok && typ == "get" {
		var users []waBinary.Node
		for _, u := range keyNode.GetChildren() {
			jid, ok := u.Attrs["jid"].(types.JID)
			if !ok {
				continue
			}
			users = append(users, s.bundleNode(jid))
		}
		c.result(node, waBinary.Node{Tag: "list", Content: users})
		return
	}
	if typ == "set" {
		reg := parseUpload(node)
		me := c.device()
		s.mu.Lock()
		if d := s.devices[me]; d != nil && reg != nil {
			d.identity, d.regID, d.skey = reg.identity, reg.regID, reg.skey
			d.prekeys = append(d.prekeys, reg.prekeys...)
		}
		s.notifyLocked()
		s.mu.Unlock()
		c.result(node)
		return
	}
	c.iqError(node, 400, "bad-request")
}

type upload struct {
	registration
	prekeys []*keys.PreKey
}

func parseUpload(node *waBinary.Node) *upload {
	regBytes, _ := node.GetChildByTag("registration").Content.([]byte)
	ident, _ := node.GetChildByTag("identity").Content.([]byte)
	if len(regBytes) != 4 || len(ident) != 32 {
		return nil
	}
	u := &upload{registration: registration{identity: ident, regID: binary.BigEndian.Uint32(regBytes)}}
	u.skey = parseKeyNode(node.GetChildByTag("skey"))
	list := node.GetChildByTag("list")
	for _, k := range list.GetChildren() {
		if pk := parseKeyNode(k); pk != nil {
			u.prekeys = append(u.prekeys, pk)
		}
	}
	return u
}

func parseKeyNode(n waBinary.Node) *keys.PreKey {
	id, _ := n.GetChildByTag("id").Content.([]byte)
	val, _ := n.GetChildByTag("value").Content.([]byte)
	if len(id) != 3 || len(val) != 32 {
		return nil
	}
	pk := &keys.PreKey{KeyID: uint32(id[0])<<16 | uint32(id[1])<<8 | uint32(id[2])}
	pk.Pub = (*[32]byte)(val)
	if sig, _ := n.GetChildByTag("signature").Content.([]byte); len(sig) == 64 {
		pk.Signature = (*[64]byte)(sig)
	}
	return pk
}

func keyNode(tag string, k *keys.PreKey) waBinary.Node {
	id := []byte{byte(k.KeyID >> 16), byte(k.KeyID >> 8), byte(k.KeyID)}
	content := []waBinary.Node{{Tag: "id", Content: id}, {Tag: "value", Content: k.Pub[:]}}
	if k.Signature != nil {
		content = append(content, waBinary.Node{Tag: "signature", Content: k.Signature[:]})
	}
	return waBinary.Node{Tag: tag, Content: content}
}

// bundleNode answers a prekey fetch for one device: a fake peer's keys, or a
// companion device's uploaded keys.
func (s *Server) bundleNode(jid types.JID) waBinary.Node {
	user := waBinary.Node{Tag: "user", Attrs: waBinary.Attrs{"jid": jid}}
	var ident []byte
	var regID uint32
	var skey, pk *keys.PreKey
	s.mu.Lock()
	if p := s.peers[jid]; p != nil {
		ident, regID, skey = p.store.ident.Pub[:], p.store.regID, p.store.signed
		s.mu.Unlock()
		pk = p.store.newPreKey()
	} else if d := s.devices[jid]; d != nil && d.skey != nil {
		ident, regID, skey = d.identity, d.regID, d.skey
		if len(d.prekeys) > 0 {
			pk, d.prekeys = d.prekeys[0], d.prekeys[1:]
		}
		s.mu.Unlock()
	} else {
		s.mu.Unlock()
		user.Content = []waBinary.Node{{Tag: "error", Attrs: waBinary.Attrs{"code": "404", "text": "item-not-found"}}}
		return user
	}
	reg := make([]byte, 4)
	binary.BigEndian.PutUint32(reg, regID)
	content := []waBinary.Node{
		{Tag: "registration", Content: reg},
		{Tag: "type", Content: []byte{ecc.DjbType}},
		{Tag: "identity", Content: ident},
	}
	if pk != nil {
		content = append(content, keyNode("key", pk))
	}
	user.Content = append(content, keyNode("skey", skey))
	return user
}

func (c *conn) handleUsync(node *waBinary.Node) {
	s := c.srv
	usync := node.GetChildByTag("usync")
	var users []waBinary.Node
	me := c.device()
	userList := usync.GetChildByTag("list")
	for _, u := range userList.GetChildren() {
		jid, ok := u.Attrs["jid"].(types.JID)
		if !ok {
			continue
		}
		var ids []uint16
		s.mu.Lock()
		if jid.User == me.User {
			// Only the asking device: the fake cannot decrypt copies meant
			// for other companions, and the phone does not need them here.
			ids = append(ids, me.Device)
		} else {
			for pj := range s.peers {
				if pj.User == jid.User && pj.Server == jid.Server {
					ids = append(ids, pj.Device)
				}
			}
			for dj, d := range s.devices {
				if dj.User == jid.User && !d.removed {
					ids = append(ids, dj.Device)
				}
			}
			if len(ids) == 0 && jid.Server == types.DefaultUserServer {
				// Every number exists: an unknown one becomes a fake peer
				// that can decrypt what the client sends it.
				s.peerLocked(jid)
				ids = append(ids, 0)
			}
		}
		s.mu.Unlock()
		list := make([]waBinary.Node, 0, len(ids))
		for _, id := range ids {
			list = append(list, waBinary.Node{Tag: "device", Attrs: waBinary.Attrs{"id": strconv.Itoa(int(id))}})
		}
		users = append(users, waBinary.Node{Tag: "user", Attrs: waBinary.Attrs{"jid": jid}, Content: []waBinary.Node{
			{Tag: "devices", Content: []waBinary.Node{{Tag: "device-list", Content: list}}},
		}})
	}
	c.result(node, waBinary.Node{Tag: "usync", Attrs: waBinary.Attrs{"sid": usync.Attrs["sid"]},
		Content: []waBinary.Node{{Tag: "list", Content: users}}})
}
