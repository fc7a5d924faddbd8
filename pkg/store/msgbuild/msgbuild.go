// Package msgbuild turns whatsmeow events into store values with every
// identifier of the contract computed (package dedupe), so live messages,
// history-sync messages (parsed with Client.ParseWebMessage) and the app's
// outbound sends all reach the store in the same shape.
package msgbuild

import (
	"errors"
	"strings"
	"time"

	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/wactl/wactl/pkg/dedupe"
	"github.com/wactl/wactl/pkg/store"
)

// Sources written to the source field.
const (
	SourceRealtime = "realtime"
	SourceHistory  = "history_sync"
	SourceOutbound = "outbound"
)

// MaxBodyChars is the contract's limit on body.
const MaxBodyChars = 10000

// Input is one whatsmeow message event and what the caller resolved for it.
type Input struct {
	AccountID string
	Event     *events.Message
	// Chat is the chat with a @lid replaced by the phone-number JID when the
	// mapping is known (Store.LIDs.GetPNForLID); zero means Event.Info.Chat.
	Chat types.JID
	// Sender is the sender resolved the same way; zero means Event.Info.Sender.
	Sender types.JID
	// Source is SourceRealtime or SourceHistory.
	Source string
}

// Result is what a message event means for the store. Exactly one of
// Message (KindChat, KindReaction), Edit or Revoke is meaningful, as Kind
// says; KindProtocol carries nothing to store.
type Result struct {
	Kind    dedupe.Kind
	Message store.Message
	// TargetID is the message a reaction points at.
	TargetID string
	Edit     store.Edit
	Revoke   store.Revoke
}

// Build computes the store value of a message event.
func Build(in Input) (Result, error) {
	if in.AccountID == "" {
		return Result{}, errors.New("msgbuild: account id is empty")
	}
	if in.Event == nil || in.Event.Info.ID == "" {
		return Result{}, errors.New("msgbuild: event has no message id")
	}
	info := in.Event.Info
	rawChat := info.Chat
	chat := in.Chat
	if chat.IsEmpty() {
		chat = rawChat
	}
	if chat.IsEmpty() {
		return Result{}, errors.New("msgbuild: event has no chat JID")
	}
	sender := in.Sender
	if sender.IsEmpty() {
		sender = info.Sender
	}
	clientJID := dedupe.CanonicalJID(chat.ToNonAD().String())
	senderJID := ""
	if !sender.IsEmpty() {
		senderJID = dedupe.CanonicalJID(sender.ToNonAD().String())
	}
	at := info.Timestamp

	c := dedupe.Extract(in.Event.Message)
	res := Result{Kind: c.Kind, TargetID: c.TargetID}
	switch c.Kind {
	case dedupe.KindProtocol:
		return res, nil
	case dedupe.KindEdit:
		res.Edit = store.Edit{AccountID: in.AccountID, ChatJID: clientJID, TargetWAID: c.TargetID, NewBody: truncate(c.Body), At: at}
		return res, nil
	case dedupe.KindRevoke:
		res.Revoke = store.Revoke{AccountID: in.AccountID, ChatJID: clientJID, TargetWAID: c.TargetID, At: at}
		return res, nil
	}

	fromMe := info.IsFromMe
	direction, status := "inbound", "delivered"
	if fromMe {
		direction, status = "outbound", "sent"
	}
	participant := ""
	if info.IsGroup {
		participant = senderJID
	}
	waID := strings.TrimSpace(info.ID)
	body := truncate(c.Body)
	peer := dedupe.PeerType(clientJID)
	m := store.Message{
		AccountID:       in.AccountID,
		ThreadID:        dedupe.ThreadID(in.AccountID, clientJID),
		DocID:           dedupe.MessageDocID(in.AccountID, waID),
		ClientJID:       clientJID,
		ClientJIDRaw:    rawChat.String(),
		RawJID:          rawChat.String(),
		ResolvedJID:     clientJID,
		NormalizedPhone: dedupe.NormalizedPhone(clientJID),
		PeerType:        peer,
		IsGroup:         peer == dedupe.PeerGroup,
		SenderJID:       senderJID,
		SenderName:      info.PushName,
		Direction:       direction,
		Body:            body,
		WAMessageID:     waID,
		WAMessageIDRaw:  info.ID,
		Status:          status,
		MessageType:     c.MessageType,
		MediaType:       c.MediaType,
		TsClient:        at,
		Source:          in.Source,
		StableKeyHash:   dedupe.StableKeyHash(dedupe.StableKey(in.AccountID, clientJID, waID, fromMe, participant)),
		FingerprintHash: dedupe.StrongFingerprintHash(clientJID, direction, seedParticipant(info), tsMs(at), c.MessageType, c.Body),
	}
	// The old service wrote the WhatsApp id as providerMessageId for every
	// message, inbound too.
	m.ProviderMessageID = waID
	if !fromMe && peer != dedupe.PeerGroup {
		m.DisplayName = info.PushName
	}
	res.Message = m
	return res, nil
}

// Outbound describes a send the app or the API asked for.
type Outbound struct {
	AccountID string
	ToJID     string
	// RequestID is the app's request id; it becomes the document id so the
	// WhatsApp echo of the send lands on the same document.
	RequestID       string
	ClientMessageID string
	Body            string
	// WAMessageID is the id the message was (or will be) sent with; empty
	// while only queued.
	WAMessageID string
	Status      string // queued | sent | failed
	At          time.Time
	SenderJID   string // own JID
}

// BuildOutbound computes the store value of an outbound send.
func BuildOutbound(o Outbound) (store.Message, error) {
	if o.AccountID == "" || o.ToJID == "" {
		return store.Message{}, errors.New("msgbuild: outbound needs an account id and a recipient")
	}
	if o.RequestID == "" && o.WAMessageID == "" {
		return store.Message{}, errors.New("msgbuild: outbound needs a request id or a WhatsApp id")
	}
	clientJID := dedupe.CanonicalJID(o.ToJID)
	docID := o.RequestID
	if docID == "" {
		docID = dedupe.MessageDocID(o.AccountID, o.WAMessageID)
	}
	status := o.Status
	if status == "" {
		status = "queued"
	}
	body := truncate(o.Body)
	senderJID := dedupe.CanonicalJID(o.SenderJID)
	peer := dedupe.PeerType(clientJID)
	m := store.Message{
		AccountID:         o.AccountID,
		ThreadID:          dedupe.ThreadID(o.AccountID, clientJID),
		DocID:             docID,
		ClientJID:         clientJID,
		ClientJIDRaw:      o.ToJID,
		RawJID:            o.ToJID,
		ResolvedJID:       clientJID,
		NormalizedPhone:   dedupe.NormalizedPhone(clientJID),
		PeerType:          peer,
		IsGroup:           peer == dedupe.PeerGroup,
		SenderJID:         senderJID,
		Direction:         "outbound",
		Body:              body,
		WAMessageID:       o.WAMessageID,
		WAMessageIDRaw:    o.WAMessageID,
		ProviderMessageID: o.WAMessageID,
		ClientMessageID:   o.ClientMessageID,
		Status:            status,
		MessageType:       dedupe.TypeText,
		TsClient:          o.At,
		Source:            SourceOutbound,
		// The old service's own sends carried no participant, in groups too.
		FingerprintHash: dedupe.StrongFingerprintHash(clientJID, "outbound", "", tsMs(o.At), dedupe.TypeText, o.Body),
	}
	if o.WAMessageID != "" {
		m.StableKeyHash = dedupe.StableKeyHash(dedupe.StableKey(o.AccountID, clientJID, o.WAMessageID, true, ""))
	}
	return m, nil
}

// seedParticipant is the participant the old service put in the strong
// fingerprint: the message key's participant as WhatsApp sent it (a @lid
// stays a @lid), without the device.
func seedParticipant(info types.MessageInfo) string {
	if !info.IsGroup || info.Sender.IsEmpty() {
		return ""
	}
	return dedupe.CanonicalJID(info.Sender.ToNonAD().String())
}

func tsMs(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// truncate keeps at most MaxBodyChars characters without splitting one.
func truncate(s string) string {
	if len(s) <= MaxBodyChars {
		return s
	}
	n := 0
	for i := range s {
		if n == MaxBodyChars {
			return s[:i]
		}
		n++
	}
	return s
}
