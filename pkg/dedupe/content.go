package dedupe

import (
	"strings"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Kind says what a WhatsApp message is for the store.
type Kind int

const (
	// KindChat is a chat message that gets its own document.
	KindChat Kind = iota
	// KindReaction is a reaction to TargetID; Body is the emoji ("" removes it).
	KindReaction
	// KindEdit replaces the body of TargetID with Body.
	KindEdit
	// KindRevoke deletes TargetID for everyone.
	KindRevoke
	// KindProtocol is a protocol message with no chat content (key shares,
	// history-sync notifications, ephemeral settings…): not a chat message.
	KindProtocol
)

func (k Kind) String() string {
	switch k {
	case KindChat:
		return "chat"
	case KindReaction:
		return "reaction"
	case KindEdit:
		return "edit"
	case KindRevoke:
		return "revoke"
	case KindProtocol:
		return "protocol"
	}
	return "unknown"
}

// Message types written to messageType. Kinds this package does not know are
// "unknown" (with Body empty) rather than dropped, so they stay visible.
const (
	TypeText     = "text"
	TypeImage    = "image"
	TypeVideo    = "video"
	TypeAudio    = "audio"
	TypeVoice    = "voice"
	TypeDocument = "document"
	TypeSticker  = "sticker"
	TypeLocation = "location"
	TypeContact  = "contact"
	TypePoll     = "poll"
	TypeReaction = "reaction"
	TypeEdit     = "edit"
	TypeRevoke   = "revoke"
	TypeProtocol = "protocol"
	TypeUnknown  = "unknown"
)

// Content is what Extract finds in a message.
type Content struct {
	Kind        Kind
	MessageType string
	// MediaType is the MIME type of media, "" otherwise.
	MediaType string
	// Body is the text the fingerprint and the app use: conversation,
	// extended text, or the caption of image/video/document. For kinds
	// without such text a short description is NOT invented: Body stays
	// "" except for location (name/address), contact (display name), poll
	// (question), reaction (emoji) and edit (the new text).
	Body string
	// TargetID is the WhatsApp id a reaction, edit or revoke points at.
	TargetID string
	// ProtocolType names the ProtocolMessage type for KindProtocol.
	ProtocolType string
}

// Unwrap removes the wrappers whatsmeow leaves on raw messages (device-sent,
// ephemeral, view-once v1/v2/extension, document-with-caption, edited,
// lottie sticker, bot invoke). events.Message.Message is already unwrapped;
// this matters for RawMessage and history-sync payloads handled directly.
func Unwrap(m *waE2E.Message) *waE2E.Message {
	for i := 0; m != nil && i < 16; i++ {
		var next *waE2E.Message
		switch {
		case m.GetDeviceSentMessage().GetMessage() != nil:
			next = m.GetDeviceSentMessage().GetMessage()
		case m.GetEphemeralMessage().GetMessage() != nil:
			next = m.GetEphemeralMessage().GetMessage()
		case m.GetViewOnceMessage().GetMessage() != nil:
			next = m.GetViewOnceMessage().GetMessage()
		case m.GetViewOnceMessageV2().GetMessage() != nil:
			next = m.GetViewOnceMessageV2().GetMessage()
		case m.GetViewOnceMessageV2Extension().GetMessage() != nil:
			next = m.GetViewOnceMessageV2Extension().GetMessage()
		case m.GetDocumentWithCaptionMessage().GetMessage() != nil:
			next = m.GetDocumentWithCaptionMessage().GetMessage()
		case m.GetEditedMessage().GetMessage() != nil:
			next = m.GetEditedMessage().GetMessage()
		case m.GetLottieStickerMessage().GetMessage() != nil:
			next = m.GetLottieStickerMessage().GetMessage()
		case m.GetBotInvokeMessage().GetMessage() != nil:
			next = m.GetBotInvokeMessage().GetMessage()
		default:
			return m
		}
		m = next
	}
	return m
}

// Extract classifies a message and pulls out its body.
func Extract(raw *waE2E.Message) Content {
	m := Unwrap(raw)
	if m == nil {
		return Content{Kind: KindProtocol, MessageType: TypeUnknown}
	}
	if pm := m.GetProtocolMessage(); pm != nil {
		return protocolContent(pm)
	}
	switch {
	case m.Conversation != nil:
		return chat(TypeText, "", m.GetConversation())
	case m.ExtendedTextMessage != nil:
		return chat(TypeText, "", m.GetExtendedTextMessage().GetText())
	case m.ImageMessage != nil:
		im := m.GetImageMessage()
		return chat(TypeImage, im.GetMimetype(), im.GetCaption())
	case m.VideoMessage != nil:
		vm := m.GetVideoMessage()
		return chat(TypeVideo, vm.GetMimetype(), vm.GetCaption())
	case m.PtvMessage != nil:
		vm := m.GetPtvMessage()
		return chat(TypeVideo, vm.GetMimetype(), vm.GetCaption())
	case m.AudioMessage != nil:
		am := m.GetAudioMessage()
		t := TypeAudio
		if am.GetPTT() {
			t = TypeVoice
		}
		return chat(t, am.GetMimetype(), "")
	case m.DocumentMessage != nil:
		dm := m.GetDocumentMessage()
		return chat(TypeDocument, dm.GetMimetype(), dm.GetCaption())
	case m.StickerMessage != nil:
		return chat(TypeSticker, m.GetStickerMessage().GetMimetype(), "")
	case m.LocationMessage != nil:
		lm := m.GetLocationMessage()
		return chat(TypeLocation, "", joinNonEmpty(lm.GetName(), lm.GetAddress()))
	case m.LiveLocationMessage != nil:
		return chat(TypeLocation, "", m.GetLiveLocationMessage().GetCaption())
	case m.ContactMessage != nil:
		return chat(TypeContact, "", m.GetContactMessage().GetDisplayName())
	case m.ContactsArrayMessage != nil:
		ca := m.GetContactsArrayMessage()
		name := ca.GetDisplayName()
		if name == "" {
			names := make([]string, 0, len(ca.GetContacts()))
			for _, c := range ca.GetContacts() {
				names = append(names, c.GetDisplayName())
			}
			name = joinNonEmpty(names...)
		}
		return chat(TypeContact, "", name)
	case m.PollCreationMessage != nil:
		return chat(TypePoll, "", m.GetPollCreationMessage().GetName())
	case m.PollCreationMessageV2 != nil:
		return chat(TypePoll, "", m.GetPollCreationMessageV2().GetName())
	case m.PollCreationMessageV3 != nil:
		return chat(TypePoll, "", m.GetPollCreationMessageV3().GetName())
	case m.PollCreationMessageV5 != nil:
		return chat(TypePoll, "", m.GetPollCreationMessageV5().GetName())
	case m.ReactionMessage != nil:
		r := m.GetReactionMessage()
		return Content{Kind: KindReaction, MessageType: TypeReaction, Body: r.GetText(), TargetID: r.GetKey().GetID()}
	}
	if onlyProtocolNoise(m) {
		return Content{Kind: KindProtocol, MessageType: TypeProtocol}
	}
	return Content{Kind: KindChat, MessageType: TypeUnknown}
}

func chat(t, mime, body string) Content {
	return Content{Kind: KindChat, MessageType: t, MediaType: mime, Body: body}
}

func protocolContent(pm *waE2E.ProtocolMessage) Content {
	target := pm.GetKey().GetID()
	switch pm.GetType() {
	case waE2E.ProtocolMessage_REVOKE:
		return Content{Kind: KindRevoke, MessageType: TypeRevoke, TargetID: target}
	case waE2E.ProtocolMessage_MESSAGE_EDIT:
		inner := Extract(pm.GetEditedMessage())
		return Content{Kind: KindEdit, MessageType: TypeEdit, Body: inner.Body, MediaType: inner.MediaType, TargetID: target}
	}
	return Content{Kind: KindProtocol, MessageType: TypeProtocol, ProtocolType: pm.GetType().String()}
}

// onlyProtocolNoise reports messages that carry nothing for a chat: sender
// key distributions and context info only (they ride along with the first
// group message, or arrive on their own).
func onlyProtocolNoise(m *waE2E.Message) bool {
	noise := true
	m.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		switch fd.Name() {
		case "senderKeyDistributionMessage", "fastRatchetKeySenderKeyDistributionMessage", "messageContextInfo":
			return true
		}
		noise = false
		return false
	})
	return noise
}

func joinNonEmpty(parts ...string) string {
	out := parts[:0:0]
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, ", ")
}

// The strong fingerprint as the old service computed it. Both writers must
// produce the same fingerprintHash for the same message, or strong dedupe
// and the fingerprint audit never match across a cutover.

// SeedSender is the senderJid of the fingerprint's seed: the participant in
// a group, "" in a 1:1 chat (the old service's getSenderJid returned null
// outside groups, whatever the message's sender).
func SeedSender(canonicalJID, participant string) string {
	if PeerType(canonicalJID) == PeerGroup {
		return participant
	}
	return ""
}

// SeedType is the messageType of the fingerprint's seed: the old service
// knew no voice notes (push-to-talk audio was "audio").
func SeedType(messageType string) string {
	if messageType == TypeVoice {
		return TypeAudio
	}
	return messageType
}

// StrongFingerprint is the 40-hex strong fingerprint of a message; sender is
// the message's sender, reduced to the seed's form by SeedSender.
func StrongFingerprint(canonicalJID, direction, sender string, tsClientMs int64, messageType, text string) string {
	return Fingerprint(canonicalJID, direction, SeedSender(canonicalJID, sender), tsClientMs, SeedType(messageType), text)
}

// StrongFingerprintHash is the fingerprintHash field: the first 8 hex of
// sha1(StrongFingerprint(…)).
func StrongFingerprintHash(canonicalJID, direction, sender string, tsClientMs int64, messageType, text string) string {
	return FingerprintHash(StrongFingerprint(canonicalJID, direction, sender, tsClientMs, messageType, text))
}

// PreFixFingerprintHash is the fingerprintHash wactl wrote before it matched
// the old service (schemaVersion 2 documents up to that fix): the first 8
// hex of the unhashed fingerprint, seeded with the stored senderJid even in
// 1:1 chats. The audit recomputes it to recognise such documents.
func PreFixFingerprintHash(canonicalJID, direction, senderJID string, tsClientMs int64, messageType, text string) string {
	return Fingerprint(canonicalJID, direction, senderJID, tsClientMs, messageType, text)[:8]
}
