// messages.go: the old service's message, thread and mapping writes (its
// persistMessage, the app proxy's queued document, its outbox worker), in
// its shapes and field types, bugs included where they shape the data
// (lastMessageAt moving back, a second document for the echo of an app
// send), and its first duplicates audit. See the package documentation in
// lock.go.

package legacynode

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Messages writes what the old service and the app's proxy wrote for
// messages. Now is the service's Date.now(); nil means time.Now.
type Messages struct {
	C   *firestore.Client
	Now func() time.Time
	// StrongDedupe is the old service's WA_STRONG_DEDUPE: a fingerprint
	// marker per thread that skips a second message with the same
	// fingerprint (off by default, as deployed).
	StrongDedupe bool
}

// WAMessage is the part of a Baileys message the old service read.
type WAMessage struct {
	ID          string // key.id
	RemoteJID   string // key.remoteJid
	FromMe      bool   // key.fromMe
	Participant string // key.participant (groups)
	PushName    string
	// Timestamp is messageTimestamp in seconds; 0 means missing.
	Timestamp int64
	// Kind is the message's content: conversation, extendedText, image,
	// video, audio, document, sticker, or anything else (unknown).
	Kind string
	Text string // the conversation/extended text, or the caption
	// Status is statusOverride (queued, sent); "" takes sent/delivered.
	Status string
}

// Persisted is what persistMessage did.
type Persisted struct {
	ThreadID, DocID string
	Skipped         bool
	Reason          string // why it was skipped
}

func (s *Messages) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func sha1Hex(v string) string {
	h := sha1.Sum([]byte(v))
	return hex.EncodeToString(h[:])
}

func msgSha256Hex(v string) string {
	h := sha256.Sum256([]byte(v))
	return hex.EncodeToString(h[:])
}

func msgNotFound(err error) bool { return status.Code(err) == codes.NotFound }

var jsSpace = regexp.MustCompile(`[\t\n\v\f\r \x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}\x{feff}]+`)

// normalizeText is text.trim().replace(/\s+/g, ' ').
func normalizeText(t string) string {
	return strings.TrimSpace(jsSpace.ReplaceAllString(jsSpace.ReplaceAllString(t, " "), " "))
}

func (m WAMessage) body() string {
	switch m.Kind {
	case "conversation", "extendedText", "image", "video", "document":
		return normalizeText(m.Text)
	}
	return ""
}

func (m WAMessage) messageType() string {
	switch m.Kind {
	case "conversation", "extendedText":
		if m.Text != "" {
			return "text"
		}
		return "unknown"
	case "image", "video", "audio", "document", "sticker":
		return m.Kind
	}
	return "unknown"
}

// canonicalizeJid is the old lib/wa-canonical.js canonicalizeJid.
func canonicalizeJid(raw string) string {
	t := strings.ToLower(strings.TrimSpace(raw))
	user, domain, ok := strings.Cut(t, "@")
	if !ok || strings.Contains(domain, "@") || user == "" || domain == "" {
		return t
	}
	if len(user) > 1 && user[0] == '+' && isDigits(user[1:]) {
		user = user[1:]
	}
	if base, suffix, ok := strings.Cut(user, ":"); ok && (isDigits(suffix) || strings.EqualFold(suffix, "device")) {
		user = base
	}
	if domain == "c.us" {
		domain = "s.whatsapp.net"
	}
	return user + "@" + domain
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// normalizedPhone is normalizeJidToE164(jid).normalizedPhone, with no
// default calling code configured; nil when there is none.
func normalizedPhone(jid string) any {
	if jid == "" || strings.Contains(jid, "@lid") {
		return nil
	}
	user, _, _ := strings.Cut(jid, "@")
	if strings.HasPrefix(user, "+") {
		return user
	}
	var b strings.Builder
	for _, r := range user {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	d := b.String()
	if d == "" || len(d) > 15 {
		return nil
	}
	return "+" + d
}

func peerType(raw string) string {
	switch {
	case strings.HasSuffix(raw, "@g.us"):
		return "group"
	case strings.HasSuffix(raw, "@lid"):
		return "lid"
	}
	return "user"
}

func orNil(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func isoMs(ms int64) string { return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z") }

// LegacyFingerprint is the old getStrongFingerprint: sha1 of the seed,
// with the key's participant as sender in groups and "" otherwise.
func LegacyFingerprint(canonicalJID string, m WAMessage, tsClientMs int64) string {
	sender := ""
	if strings.HasSuffix(m.RemoteJID, "@g.us") {
		sender = m.Participant
	}
	dir := "inbound"
	if m.FromMe {
		dir = "outbound"
	}
	ts := "unknown"
	if tsClientMs != 0 {
		ts = strconv.FormatInt(tsClientMs, 10)
	}
	return sha1Hex(strings.Join([]string{canonicalJID, dir, sender, ts, m.messageType(), sha1Hex(m.body())[:8]}, "|"))
}

// MappingTTL is how long the old service's message_ids mappings lived
// (expiresAt, for a TTL policy).
const MappingTTL = 30 * 24 * time.Hour

// Persist is the old persistMessage: realtime and history messages, and
// the service's own sends (source "outbound"). @lid chats stay unresolved
// (no jid_aliases, no socket), and there are no contacts to name a thread.
func (s *Messages) Persist(ctx context.Context, accountID string, m WAMessage, source string) (Persisted, error) {
	raw := strings.TrimSpace(m.RemoteJID)
	if m.ID == "" || raw == "" {
		return Persisted{Skipped: true, Reason: "invalid_message"}, nil
	}
	canonical := canonicalizeJid(raw)
	peer := peerType(raw)
	isGroup := peer == "group"
	var tsMs int64
	var tsClient any = firestore.ServerTimestamp
	if m.Timestamp > 0 {
		tsMs = m.Timestamp * 1000
		tsClient = time.UnixMilli(tsMs).UTC()
	}
	body, typ := m.body(), m.messageType()
	if body == "" && typ == "unknown" {
		return Persisted{Skipped: true, Reason: "unsupported_message_type"}, nil
	}
	threadID := accountID + "__" + canonical
	var senderJid any
	if isGroup && m.Participant != "" {
		senderJid = m.Participant
	}
	fromMe := "0"
	if m.FromMe {
		fromMe = "1"
	}
	stableKey := strings.Join([]string{accountID, canonical, m.ID, fromMe, m.Participant}, "|")
	fp := LegacyFingerprint(canonical, m, tsMs)
	docID := sha1Hex(stableKey)[:24]
	if !m.FromMe {
		docID = sha1Hex(accountID + "|" + m.ID)[:24]
	}
	direction, status := "inbound", "delivered"
	if m.FromMe {
		direction, status = "outbound", "sent"
	}
	if m.Status != "" {
		status = m.Status
	}
	var resolved any
	if canonical != raw {
		resolved = canonical
	}
	var tsMsField, isoField any
	reason := any("missing_messageTimestamp")
	if tsMs != 0 {
		tsMsField, isoField, reason = tsMs, isoMs(tsMs), nil
	}
	if len(body) > 10000 {
		body = body[:10000]
	}
	msgData := map[string]any{
		"accountId": accountID, "clientJid": canonical, "clientJidRaw": raw, "rawJid": raw,
		"resolvedJid": resolved, "normalizedPhone": normalizedPhone(canonical), "canonicalThreadId": threadID,
		"peerType": peer, "isGroup": isGroup, "senderJid": senderJid, "senderName": orNil(m.PushName),
		"direction": direction, "body": body, "waMessageIdRaw": m.ID, "providerMessageId": m.ID,
		"status": status, "tsClient": tsClient, "tsClientMs": tsMsField,
		"tsClientFallback": tsMs == 0, "tsClientReason": reason, "tsClientIso": isoField,
		"tsServer": firestore.ServerTimestamp, "ingestedAt": firestore.ServerTimestamp,
		"schemaVersion": int64(1), "createdAt": firestore.ServerTimestamp, "createdAtMs": tsMsField,
		"messageType": typ, "source": source,
		"stableKeyHash": sha1Hex(stableKey)[:8], "fingerprintHash": sha1Hex(fp)[:8],
	}
	switch m.Kind {
	case "image", "video", "audio", "document":
		msgData["mediaType"] = m.Kind
	}
	thread := s.C.Collection("threads").Doc(threadID)
	msgRef := thread.Collection("messages").Doc(docID)
	stableRef := thread.Collection("dedupe").Doc(sha1Hex(stableKey))
	fpRef := thread.Collection("dedupe_fp").Doc(sha1Hex(fp))
	mapRef := s.C.Collection("message_ids").Doc(accountID + "__" + m.ID)
	expires := s.now().Add(MappingTTL).UTC()
	skipped := ""
	err := s.C.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		skipped = ""
		if snap, err := tx.Get(stableRef); err == nil && snap.Exists() {
			skipped = "stable_dedupe"
			return nil
		} else if err != nil && !msgNotFound(err) {
			return err
		}
		if s.StrongDedupe {
			if snap, err := tx.Get(fpRef); err == nil && snap.Exists() {
				skipped = "strong_dedupe"
				return nil
			} else if err != nil && !msgNotFound(err) {
				return err
			}
		}
		marker := map[string]any{"canonicalMessageId": docID, "createdAt": firestore.ServerTimestamp}
		if err := tx.Set(stableRef, marker, firestore.MergeAll); err != nil {
			return err
		}
		if s.StrongDedupe {
			if err := tx.Set(fpRef, marker, firestore.MergeAll); err != nil {
				return err
			}
		}
		if err := tx.Set(msgRef, msgData, firestore.MergeAll); err != nil {
			return err
		}
		return tx.Set(mapRef, map[string]any{
			"accountId": accountID, "threadId": threadID, "docId": docID, "waMessageId": m.ID,
			"updatedAt": firestore.ServerTimestamp, "expiresAt": expires,
		}, firestore.MergeAll)
	})
	if err != nil {
		return Persisted{}, fmt.Errorf("legacynode: persist %s: %w", m.ID, err)
	}
	if skipped != "" {
		return Persisted{ThreadID: threadID, DocID: docID, Skipped: true, Reason: skipped}, nil
	}
	// The thread summary is a blind merge: an older message (history) moves
	// lastMessageAt back, the bug the contract names.
	preview := body
	if len(preview) > 100 {
		preview = preview[:100]
	}
	var lastAt any = firestore.ServerTimestamp
	if tsMs != 0 {
		lastAt = time.UnixMilli(tsMs).UTC()
	}
	td := map[string]any{
		"accountId": accountID, "clientJid": canonical, "clientJidRaw": raw, "rawJid": raw,
		"resolvedJid": resolved, "canonicalThreadId": threadID, "peerType": peer, "isGroup": isGroup,
		"lastMessageAt": lastAt, "lastMessageAtMs": tsMsField,
		"lastMessageText": preview, "lastMessagePreview": preview, "lastMessageSenderName": orNil(m.PushName),
	}
	if !isGroup && m.PushName != "" {
		td["displayName"] = m.PushName
	}
	if _, err := thread.Set(ctx, td, firestore.MergeAll); err != nil {
		return Persisted{}, fmt.Errorf("legacynode: thread %s: %w", threadID, err)
	}
	return Persisted{ThreadID: threadID, DocID: docID}, nil
}

// Send is one message the app sends through the Functions proxy.
type Send struct {
	AccountID, ThreadID, ToJID string
	UID, ClientMessageID       string
	Text                       string
}

// RequestID is the proxy's requestId: sha256(threadId|uid|clientMessageId).
func (q Send) RequestID() string {
	return msgSha256Hex(q.ThreadID + "|" + q.UID + "|" + q.ClientMessageID)
}

// ProxyQueue is what the app's proxy (whatsappProxySend) wrote: the outbox
// item, a queued message document under the requestId (tsClient an ISO
// string) and the thread's last message. It returns the requestId.
func (s *Messages) ProxyQueue(ctx context.Context, q Send) (string, error) {
	id := q.RequestID()
	now := s.now()
	out := s.C.Collection("outbox").Doc(id)
	_, err := out.Create(ctx, map[string]any{
		"requestId": id, "threadId": q.ThreadID, "accountId": q.AccountID, "toJid": q.ToJID,
		"body": q.Text, "payload": map[string]any{"text": q.Text}, "status": "queued", "attemptCount": int64(0),
		"nextAttemptAt": firestore.ServerTimestamp, "createdAt": firestore.ServerTimestamp, "createdByUid": q.UID,
	})
	if err != nil {
		return "", fmt.Errorf("legacynode: outbox %s: %w", id, err)
	}
	thread := s.C.Collection("threads").Doc(q.ThreadID)
	_, err = thread.Collection("messages").Doc(id).Set(ctx, map[string]any{
		"accountId": q.AccountID, "clientJid": q.ToJID, "direction": "outbound", "body": q.Text,
		"status": "queued", "tsClient": now.UTC().Format("2006-01-02T15:04:05.000Z"),
		"tsServer": firestore.ServerTimestamp, "createdAt": firestore.ServerTimestamp, "createdAtMs": now.UnixMilli(),
		"messageType": "text", "clientMessageId": q.ClientMessageID,
	}, firestore.MergeAll)
	if err != nil {
		return "", err
	}
	preview := q.Text
	if len(preview) > 100 {
		preview = preview[:100]
	}
	_, err = thread.Set(ctx, map[string]any{
		"lastMessageAt": firestore.ServerTimestamp, "lastMessageAtMs": now.UnixMilli(),
		"lastMessagePreview": preview, "lastMessageText": preview, "lastMessageDirection": "outbound",
		"updatedAt": firestore.ServerTimestamp,
	}, firestore.MergeAll)
	return id, err
}

// OutboxSent is the old service's outbox worker after WhatsApp accepted
// the send of requestID under waMessageID: the outbox item, the requestId
// message document (stamped with the send time), the thread and the
// mapping. The echo of the send then arrives as a fromMe message and
// Persist gives it a second document.
func (s *Messages) OutboxSent(ctx context.Context, requestID, waMessageID string) error {
	out := s.C.Collection("outbox").Doc(requestID)
	snap, err := out.Get(ctx)
	if err != nil {
		return fmt.Errorf("legacynode: outbox %s: %w", requestID, err)
	}
	d := snap.Data()
	str := func(k string) string { v, _ := d[k].(string); return v }
	accountID, threadID, toJid, body := str("accountId"), str("threadId"), str("toJid"), str("body")
	clientMessageID := str("clientMessageId")
	if clientMessageID == "" {
		clientMessageID = requestID
	}
	if _, err := out.Update(ctx, []firestore.Update{
		{Path: "status", Value: "sent"}, {Path: "providerMessageId", Value: waMessageID},
		{Path: "sentAt", Value: firestore.ServerTimestamp}, {Path: "updatedAt", Value: firestore.ServerTimestamp},
		{Path: "lastError", Value: nil}, {Path: "leaseUntil", Value: nil},
	}); err != nil {
		return err
	}
	if threadID == "" {
		return nil
	}
	now := s.now()
	ms := now.UnixMilli()
	canonical := canonicalizeJid(toJid)
	peer := peerType(toJid)
	var resolved any
	if canonical != toJid {
		resolved = canonical
	}
	thread := s.C.Collection("threads").Doc(threadID)
	if _, err := thread.Collection("messages").Doc(requestID).Set(ctx, map[string]any{
		"accountId": accountID, "clientJid": canonical, "clientJidRaw": toJid, "rawJid": toJid,
		"resolvedJid": resolved, "normalizedPhone": normalizedPhone(canonical), "canonicalThreadId": threadID,
		"isLidThread": strings.HasSuffix(toJid, "@lid"), "peerType": peer, "isGroup": peer == "group",
		"direction": "outbound", "body": body, "waMessageId": waMessageID, "status": "sent",
		"tsClient": time.UnixMilli(ms).UTC(), "tsClientFallback": false, "tsClientReason": "sent_time",
		"tsClientIso": isoMs(ms), "tsServer": firestore.ServerTimestamp, "createdAt": firestore.ServerTimestamp,
		"createdAtMs": ms, "messageType": "text", "clientMessageId": clientMessageID, "lastError": nil,
		"updatedAt": firestore.ServerTimestamp,
	}, firestore.MergeAll); err != nil {
		return err
	}
	preview := body
	if len(preview) > 100 {
		preview = preview[:100]
	}
	if _, err := thread.Set(ctx, map[string]any{
		"accountId": accountID, "clientJid": canonical, "clientJidRaw": toJid, "rawJid": toJid,
		"resolvedJid": resolved, "normalizedPhone": normalizedPhone(canonical), "canonicalThreadId": threadID,
		"isLidThread": strings.HasSuffix(toJid, "@lid"), "peerType": peer, "isGroup": peer == "group",
		"lastMessageAt": firestore.ServerTimestamp, "lastMessageAtMs": ms, "lastMessagePreview": preview,
	}, firestore.MergeAll); err != nil {
		return err
	}
	if _, err := s.C.Collection("message_ids").Doc(accountID+"__"+waMessageID).Set(ctx, map[string]any{
		"accountId": accountID, "threadId": threadID, "docId": requestID, "waMessageId": waMessageID,
		"requestId": requestID, "clientMessageId": clientMessageID,
		"updatedAt": firestore.ServerTimestamp, "expiresAt": now.Add(MappingTTL).UTC(),
	}, firestore.MergeAll); err != nil {
		return err
	}
	_, err = thread.Update(ctx, []firestore.Update{
		{Path: "lastMessageAt", Value: firestore.ServerTimestamp}, {Path: "lastMessageText", Value: body},
		{Path: "lastMessageDirection", Value: "out"}, {Path: "updatedAt", Value: firestore.ServerTimestamp},
	})
	return err
}

// AuditResult is the first duplicates audit script's output.
type AuditResult struct {
	TotalDocs          int `json:"totalDocs"`
	UniqueFingerprints int `json:"uniqueFingerprints"`
	DuplicatesCount    int `json:"duplicatesCount"`
}

// Audit is the old operators' first duplicates audit: the newest limit
// messages of one thread by tsClient, those older than the window
// dropped, grouped by sha1(direction|tsClientMs|sha1(body)[:8]|messageType).
func (s *Messages) Audit(ctx context.Context, threadID string, window time.Duration, limit int) (AuditResult, error) {
	cutoff := s.now().Add(-window).UnixMilli()
	it := s.C.Collection("threads").Doc(threadID).Collection("messages").
		OrderBy("tsClient", firestore.Desc).Limit(limit).Documents(ctx)
	defer it.Stop()
	var r AuditResult
	groups := map[string]int{}
	for {
		snap, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return r, err
		}
		d := snap.Data()
		ms := legacyMs(d)
		if ms != 0 && ms < cutoff {
			continue
		}
		str := func(k string) string { v, _ := d[k].(string); return v }
		tsPart := "unknown"
		if ms != 0 {
			tsPart = strconv.FormatInt(ms, 10)
		}
		groups[sha1Hex(str("direction")+"|"+tsPart+"|"+sha1Hex(str("body"))[:8]+"|"+str("messageType"))]++
		r.TotalDocs++
	}
	r.UniqueFingerprints = len(groups)
	r.DuplicatesCount = r.TotalDocs - r.UniqueFingerprints
	return r, nil
}

// legacyMs is the audit's time of a document: tsClientMs, else tsClient.
func legacyMs(d map[string]any) int64 {
	switch v := d["tsClientMs"].(type) {
	case int64:
		return v
	case float64:
		return int64(v)
	}
	switch v := d["tsClient"].(type) {
	case time.Time:
		return v.UnixMilli()
	case string:
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			return t.UnixMilli()
		}
	}
	return 0
}
