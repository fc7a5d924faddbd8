package audit

import (
	"hash/fnv"
	"time"

	"github.com/wactl/wactl/pkg/dedupe"
)

// docTime is the time a document is placed by: tsClient (a Timestamp, or a
// string the old service wrote), else tsClientMs, else — as the old audit
// script did — tsServer, ingestedAt, createdAt. ShapeUnparsable when none
// of them reads as a time.
func docTime(m map[string]any) (time.Time, Shape) {
	switch v := m["tsClient"].(type) {
	case time.Time:
		return v.UTC(), ShapeTimestamp
	case string:
		if t, ok := ParseTimeString(v); ok {
			return t, ShapeString
		}
	}
	if n, ok := fsInt(m, "tsClientMs"); ok && n > 0 {
		return epochTime(n), ShapeMissing
	}
	for _, f := range []struct {
		field string
		shape Shape
	}{{"tsServer", ShapeTsServer}, {"ingestedAt", ShapeIngestedAt}, {"createdAt", ShapeCreatedAt}} {
		if t, ok := fsTime(m, f.field); ok && t.UnixMilli() > 0 {
			return t, f.shape
		}
	}
	return time.Time{}, ShapeUnparsable
}

// currentFingerprint is the fingerprintHash a document groups by. wactl
// documents written before it matched the old service (schemaVersion 2)
// carry the earlier form, the first 8 hex of the unhashed fingerprint with
// the stored senderJid: recognised by recomputing it, they are grouped by
// the form the old service and wactl write now, so one message written in
// both forms still forms one group.
func currentFingerprint(m map[string]any, stored string) string {
	if stored == "" {
		return stored
	}
	if v, ok := fsInt(m, "schemaVersion"); !ok || v != 2 {
		return stored
	}
	jid := fsString(m, "clientJid")
	if jid == "" {
		return stored
	}
	ms, ok := fsInt(m, "tsClientMs")
	if !ok {
		if t, isTime := m["tsClient"].(time.Time); isTime {
			ms = t.UnixMilli()
		}
	}
	dir, sender, typ, body := fsString(m, "direction"), fsString(m, "senderJid"), fsString(m, "messageType"), fsString(m, "body")
	if dedupe.PreFixFingerprintHash(jid, dir, sender, ms, typ, body) != stored {
		return stored
	}
	return dedupe.StrongFingerprintHash(jid, dir, sender, ms, typ, body)
}

// echoRole classifies an outbound document with a body for echo pairing.
// A requestId document counts as queued only once its send went out
// (status sent or later): an app send that never left has no echo, and a
// message typed on the phone with the same text must not be hidden as one.
func echoRole(id, direction, status, body string) (EchoRole, uint64) {
	if direction != "outbound" {
		return EchoNone, 0
	}
	queued := IsRequestID(id)
	if queued {
		switch status {
		case "sent", "delivered", "read", "played":
		default:
			return EchoNone, 0
		}
	}
	text := dedupe.NormalizeText(body)
	if text == "" {
		return EchoNone, 0
	}
	h := fnv.New64a()
	h.Write([]byte(text))
	if queued {
		return EchoQueued, h.Sum64()
	}
	return EchoEcho, h.Sum64()
}

// IsRequestID reports whether a document id is shaped like the app proxy's
// requestId: 64 lower-case hex digits (a sha256).
func IsRequestID(id string) bool {
	if len(id) != 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
