package firestore

import (
	"strings"
	"time"
	"unicode/utf8"

	"cloud.google.com/go/firestore"

	"github.com/wactl/wactl/pkg/store"
)

const (
	maxBody    = 10000
	maxPreview = 100
)

func truncRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i, c := 0, 0
	for i = range s {
		if c == n {
			break
		}
		c++
	}
	return s[:i]
}

// msgTime is the message's own time; a message without one (never seen from
// WhatsApp, but possible from a careless caller) gets the time it was seen,
// because tsClient must always be a Timestamp.
func msgTime(m *store.Message, now time.Time) time.Time {
	if m.TsClient.IsZero() {
		return now
	}
	return m.TsClient
}

// messageDoc is the full document of a new message, every field of the
// contract with its type: timestamps as Timestamps, *Ms fields as integers,
// createdAt/ingestedAt/tsServer set by the server. Fields the old service
// wrote as null when it had no value are null here too (docs/fields.md),
// and the old service's tsClient bookkeeping (tsClientFallback/Reason/Iso)
// and isLidThread are written with its types.
func messageDoc(m *store.Message, ts time.Time) map[string]any {
	fallback := m.TsClient.IsZero()
	var reason, iso any
	switch {
	case fallback:
		reason = "missing_messageTimestamp"
	case m.Source == "outbound":
		reason = "sent_time"
	}
	if !fallback {
		iso = isoMillis(ts)
	}
	var sender any
	if m.IsGroup {
		sender = orNull(m.SenderJID)
	}
	return map[string]any{
		"accountId":         m.AccountID,
		"clientJid":         m.ClientJID,
		"clientJidRaw":      m.ClientJIDRaw,
		"rawJid":            m.RawJID,
		"resolvedJid":       resolvedOrNull(m.ResolvedJID, m.RawJID),
		"normalizedPhone":   orNull(m.NormalizedPhone),
		"canonicalThreadId": m.ThreadID,
		"isLidThread":       isLID(m.RawJID),
		"peerType":          m.PeerType,
		"isGroup":           m.IsGroup,
		"senderJid":         sender,
		"senderName":        orNull(m.SenderName),
		"direction":         m.Direction,
		"body":              truncRunes(m.Body, maxBody),
		"waMessageId":       m.WAMessageID,
		"waMessageIdRaw":    orNull(m.WAMessageIDRaw),
		"providerMessageId": orNull(m.ProviderMessageID),
		"clientMessageId":   m.ClientMessageID,
		"status":            m.Status,
		"messageType":       m.MessageType,
		"mediaType":         m.MediaType,
		"tsClient":          ts,
		"tsClientMs":        ts.UnixMilli(),
		"tsClientFallback":  fallback,
		"tsClientReason":    reason,
		"tsClientIso":       iso,
		"tsServer":          firestore.ServerTimestamp,
		"ingestedAt":        firestore.ServerTimestamp,
		"createdAt":         firestore.ServerTimestamp,
		"createdAtMs":       ts.UnixMilli(),
		"schemaVersion":     SchemaVersion,
		"source":            m.Source,
		"stableKeyHash":     m.StableKeyHash,
		"fingerprintHash":   m.FingerprintHash,
	}
}

// orNull is s, or null for "": the old service wrote `value || null`.
func orNull(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// resolvedOrNull is resolvedJid as the old service wrote it: the canonical
// JID only when it differs from the raw one (a resolved @lid), else null.
func resolvedOrNull(resolved, raw string) any {
	if resolved == "" || resolved == raw {
		return nil
	}
	return resolved
}

// isLID is isLidThread: the chat arrived as a @lid JID (resolved or not).
func isLID(rawJID string) bool { return strings.HasSuffix(rawJID, "@lid") }

// isoMillis is JavaScript's Date#toISOString.
func isoMillis(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// MappingTTL is how long after its last write a message_ids mapping may be
// deleted (expiresAt, for a Firestore TTL policy), as the old service set it.
const MappingTTL = 30 * 24 * time.Hour

// adoptUpdates fills a document that exists without a mapping: the app's
// proxy queued it under its requestId (or the old system wrote it). The
// WhatsApp identity and send result are added; the app's own fields stay.
func adoptUpdates(m *store.Message, existing map[string]any, ts time.Time) []firestore.Update {
	up := []firestore.Update{
		{Path: "waMessageId", Value: m.WAMessageID},
		{Path: "updatedAt", Value: firestore.ServerTimestamp},
	}
	set := func(path string, v any, ok bool) {
		if ok {
			up = append(up, firestore.Update{Path: path, Value: v})
		}
	}
	str := func(k string) string { v, _ := existing[k].(string); return v }
	set("waMessageIdRaw", m.WAMessageIDRaw, m.WAMessageIDRaw != "")
	set("providerMessageId", m.ProviderMessageID, m.ProviderMessageID != "")
	set("status", m.Status, m.Status != "" && statusRank(m.Status) > statusRank(str("status")))
	set("stableKeyHash", m.StableKeyHash, m.StableKeyHash != "" && str("stableKeyHash") == "")
	set("fingerprintHash", m.FingerprintHash, m.FingerprintHash != "" && str("fingerprintHash") == "")
	set("canonicalThreadId", m.ThreadID, str("canonicalThreadId") == "")
	set("accountId", m.AccountID, str("accountId") == "")
	set("direction", m.Direction, str("direction") == "" && m.Direction != "")
	set("source", m.Source, str("source") == "" && m.Source != "")
	set("messageType", m.MessageType, str("messageType") == "" && m.MessageType != "")
	_, hasTs := existing["tsClient"].(time.Time)
	set("tsClient", ts, !hasTs)
	set("tsClientMs", ts.UnixMilli(), !hasTs)
	// The app proxy's queued document has none of the old service's
	// bookkeeping; the send fills it as the old outbox worker did.
	if _, ok := existing["tsClientFallback"]; !ok && !hasTs {
		full := messageDoc(m, ts)
		for _, k := range []string{"tsClientFallback", "tsClientReason", "tsClientIso"} {
			up = append(up, firestore.Update{Path: k, Value: full[k]})
		}
	}
	_, hasLID := existing["isLidThread"]
	set("isLidThread", isLID(m.RawJID), !hasLID && m.RawJID != "")
	set("createdAtMs", ts.UnixMilli(), existing["createdAtMs"] == nil)
	// The app never shows a message without createdAt; documents of the old
	// system sometimes lacked it.
	_, hasCreated := existing["createdAt"].(time.Time)
	set("createdAt", firestore.ServerTimestamp, !hasCreated)
	set("schemaVersion", SchemaVersion, existing["schemaVersion"] == nil)
	return up
}

// statusRank orders message statuses so that receipts and echoes only move
// a message forward (read never goes back to delivered): queued < sent <
// failed < delivered < read. failed (a send given up for good) overrides
// queued and sent, and a later delivered/read receipt still wins over it:
// WhatsApp proved the message arrived.
func statusRank(s string) int {
	switch s {
	case "queued":
		return 1
	case "sent":
		return 2
	case "failed":
		return 3
	case "delivered":
		return 4
	case "read":
		return 5
	}
	return 0
}

func threadSummary(m *store.Message, ts time.Time) map[string]any {
	d := map[string]any{
		"lastMessageAt":         ts,
		"lastMessageAtMs":       ts.UnixMilli(),
		"lastMessageText":       truncRunes(m.Body, maxBody),
		"lastMessagePreview":    truncRunes(m.Body, maxPreview),
		"lastMessageSenderName": orNull(m.SenderName),
		"lastMessageDirection":  m.Direction,
		"updatedAt":             firestore.ServerTimestamp,
	}
	return d
}

// threadIdentity are the fields a thread gets when it is created, and that
// later messages fill in when they were empty.
func threadIdentity(m *store.Message) map[string]any {
	return map[string]any{
		"accountId":         m.AccountID,
		"clientJid":         m.ClientJID,
		"clientJidRaw":      m.ClientJIDRaw,
		"rawJid":            m.RawJID,
		"resolvedJid":       resolvedOrNull(m.ResolvedJID, m.RawJID),
		"canonicalThreadId": m.ThreadID,
		"isLidThread":       isLID(m.RawJID),
		"peerType":          m.PeerType,
		"isGroup":           m.IsGroup,
		// Absent or null in the old service's threads when unknown: the app
		// falls back to the phone number only when there is no name.
		"displayName":     orNull(m.DisplayName),
		"groupSubject":    orNull(m.GroupSubject),
		"normalizedPhone": orNull(m.NormalizedPhone),
	}
}

func mappingDoc(m *store.Message, docID, token string, now time.Time) map[string]any {
	return map[string]any{
		"writeId":     token,
		"accountId":   m.AccountID,
		"threadId":    m.ThreadID,
		"docId":       docID,
		"waMessageId": m.WAMessageID,
		"updatedAt":   firestore.ServerTimestamp,
		"expiresAt":   now.Add(MappingTTL).UTC(),
	}
}

// Decoding helpers tolerate the types old data used (strings for times,
// floats for integers) rather than failing a read.

func getStr(d map[string]any, k string) string {
	v, _ := d[k].(string)
	return v
}

func getBool(d map[string]any, k string) bool {
	v, _ := d[k].(bool)
	return v
}

func getInt(d map[string]any, k string) int64 {
	switch v := d[k].(type) {
	case int64:
		return v
	case float64:
		return int64(v)
	}
	return 0
}

func getTime(d map[string]any, k string) time.Time {
	switch v := d[k].(type) {
	case time.Time:
		return v
	case int64:
		return time.UnixMilli(v)
	case string:
		t, _ := time.Parse(time.RFC3339Nano, v)
		return t
	}
	return time.Time{}
}

func decodeMessage(threadID, docID string, d map[string]any) store.Message {
	m := store.Message{
		AccountID:         getStr(d, "accountId"),
		ThreadID:          threadID,
		DocID:             docID,
		ClientJID:         getStr(d, "clientJid"),
		ClientJIDRaw:      getStr(d, "clientJidRaw"),
		RawJID:            getStr(d, "rawJid"),
		ResolvedJID:       getStr(d, "resolvedJid"),
		NormalizedPhone:   getStr(d, "normalizedPhone"),
		PeerType:          getStr(d, "peerType"),
		IsGroup:           getBool(d, "isGroup"),
		SenderJID:         senderOf(d),
		SenderName:        getStr(d, "senderName"),
		Direction:         getStr(d, "direction"),
		Body:              getStr(d, "body"),
		WAMessageID:       getStr(d, "waMessageId"),
		WAMessageIDRaw:    getStr(d, "waMessageIdRaw"),
		ProviderMessageID: getStr(d, "providerMessageId"),
		ClientMessageID:   getStr(d, "clientMessageId"),
		Status:            getStr(d, "status"),
		MessageType:       getStr(d, "messageType"),
		MediaType:         getStr(d, "mediaType"),
		TsClient:          getTime(d, "tsClient"),
		Source:            getStr(d, "source"),
		StableKeyHash:     getStr(d, "stableKeyHash"),
		FingerprintHash:   getStr(d, "fingerprintHash"),
		CreatedAt:         getTime(d, "createdAt"),
		IngestedAt:        getTime(d, "ingestedAt"),
		DeliveredAt:       getTime(d, "deliveredAt"),
		ReadAt:            getTime(d, "readAt"),
		Edited:            getBool(d, "edited"),
		Revoked:           getBool(d, "revoked"),
		IsDuplicate:       getBool(d, "isDuplicate"),
		DuplicateOf:       getStr(d, "duplicateOf"),
	}
	if m.TsClient.IsZero() {
		if ms := getInt(d, "tsClientMs"); ms != 0 {
			m.TsClient = time.UnixMilli(ms)
		}
	}
	if m.ResolvedJID == "" {
		m.ResolvedJID = m.ClientJID // null: the raw JID was already canonical
	}
	return m
}

// senderOf reads senderJid, null outside groups: the sender of an inbound
// 1:1 message is the chat's peer.
func senderOf(d map[string]any) string {
	if s := getStr(d, "senderJid"); s != "" || getBool(d, "isGroup") || getStr(d, "direction") != "inbound" {
		return s
	}
	return getStr(d, "clientJid")
}

func decodeThread(id string, d map[string]any) store.Thread {
	t := store.Thread{
		ID:                    id,
		AccountID:             getStr(d, "accountId"),
		ClientJID:             getStr(d, "clientJid"),
		ClientJIDRaw:          getStr(d, "clientJidRaw"),
		RawJID:                getStr(d, "rawJid"),
		ResolvedJID:           getStr(d, "resolvedJid"),
		CanonicalThreadID:     getStr(d, "canonicalThreadId"),
		PeerType:              getStr(d, "peerType"),
		IsGroup:               getBool(d, "isGroup"),
		LastMessageAt:         getTime(d, "lastMessageAt"),
		LastMessageText:       getStr(d, "lastMessageText"),
		LastMessagePreview:    getStr(d, "lastMessagePreview"),
		LastMessageSenderName: getStr(d, "lastMessageSenderName"),
		LastMessageDirection:  getStr(d, "lastMessageDirection"),
		DisplayName:           getStr(d, "displayName"),
		GroupSubject:          getStr(d, "groupSubject"),
		NormalizedPhone:       getStr(d, "normalizedPhone"),
		UpdatedAt:             getTime(d, "updatedAt"),
		Hidden:                getBool(d, "hidden"),
		Archived:              getBool(d, "archived"),
		RedirectTo:            getStr(d, "redirectTo"),
	}
	if t.LastMessageAt.IsZero() {
		if ms := getInt(d, "lastMessageAtMs"); ms != 0 {
			t.LastMessageAt = time.UnixMilli(ms)
		}
	}
	if t.ResolvedJID == "" {
		t.ResolvedJID = t.ClientJID
	}
	return t
}
