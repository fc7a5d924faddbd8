package dedupe

import (
	"testing"

	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"google.golang.org/protobuf/proto"
)

func TestExtract(t *testing.T) {
	s := proto.String
	key := &waCommon.MessageKey{ID: s("3EB0TARGET")}
	text := &waE2E.Message{Conversation: s("hi there")}
	img := &waE2E.Message{ImageMessage: &waE2E.ImageMessage{Caption: s("look"), Mimetype: s("image/jpeg")}}
	for _, tc := range []struct {
		name string
		msg  *waE2E.Message
		want Content
	}{
		{"nil", nil, Content{Kind: KindProtocol, MessageType: TypeUnknown}},
		{"conversation", text, Content{Kind: KindChat, MessageType: TypeText, Body: "hi there"}},
		{"extended text", &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{Text: s("see https://x.y")}},
			Content{Kind: KindChat, MessageType: TypeText, Body: "see https://x.y"}},
		{"image with caption", img, Content{Kind: KindChat, MessageType: TypeImage, MediaType: "image/jpeg", Body: "look"}},
		{"video", &waE2E.Message{VideoMessage: &waE2E.VideoMessage{Caption: s("clip"), Mimetype: s("video/mp4")}},
			Content{Kind: KindChat, MessageType: TypeVideo, MediaType: "video/mp4", Body: "clip"}},
		{"audio", &waE2E.Message{AudioMessage: &waE2E.AudioMessage{Mimetype: s("audio/mpeg")}},
			Content{Kind: KindChat, MessageType: TypeAudio, MediaType: "audio/mpeg"}},
		{"voice note", &waE2E.Message{AudioMessage: &waE2E.AudioMessage{PTT: proto.Bool(true), Mimetype: s("audio/ogg; codecs=opus")}},
			Content{Kind: KindChat, MessageType: TypeVoice, MediaType: "audio/ogg; codecs=opus"}},
		{"document", &waE2E.Message{DocumentMessage: &waE2E.DocumentMessage{Caption: s("invoice"), Mimetype: s("application/pdf"), FileName: s("f.pdf")}},
			Content{Kind: KindChat, MessageType: TypeDocument, MediaType: "application/pdf", Body: "invoice"}},
		{"document with caption wrapper", &waE2E.Message{DocumentWithCaptionMessage: &waE2E.FutureProofMessage{Message: &waE2E.Message{
			DocumentMessage: &waE2E.DocumentMessage{Caption: s("wrapped"), Mimetype: s("application/pdf")}}}},
			Content{Kind: KindChat, MessageType: TypeDocument, MediaType: "application/pdf", Body: "wrapped"}},
		{"sticker", &waE2E.Message{StickerMessage: &waE2E.StickerMessage{Mimetype: s("image/webp")}},
			Content{Kind: KindChat, MessageType: TypeSticker, MediaType: "image/webp"}},
		{"location", &waE2E.Message{LocationMessage: &waE2E.LocationMessage{Name: s("Shop"), Address: s(" Main St 1 "), DegreesLatitude: proto.Float64(44.4)}},
			Content{Kind: KindChat, MessageType: TypeLocation, Body: "Shop, Main St 1"}},
		{"contact", &waE2E.Message{ContactMessage: &waE2E.ContactMessage{DisplayName: s("Ana")}},
			Content{Kind: KindChat, MessageType: TypeContact, Body: "Ana"}},
		{"contacts array", &waE2E.Message{ContactsArrayMessage: &waE2E.ContactsArrayMessage{Contacts: []*waE2E.ContactMessage{{DisplayName: s("Ana")}, {DisplayName: s("Ion")}}}},
			Content{Kind: KindChat, MessageType: TypeContact, Body: "Ana, Ion"}},
		{"poll", &waE2E.Message{PollCreationMessageV3: &waE2E.PollCreationMessage{Name: s("Lunch?")}},
			Content{Kind: KindChat, MessageType: TypePoll, Body: "Lunch?"}},
		{"reaction", &waE2E.Message{ReactionMessage: &waE2E.ReactionMessage{Key: key, Text: s("👍")}},
			Content{Kind: KindReaction, MessageType: TypeReaction, Body: "👍", TargetID: "3EB0TARGET"}},
		{"edit", &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{Type: waE2E.ProtocolMessage_MESSAGE_EDIT.Enum(), Key: key,
			EditedMessage: &waE2E.Message{Conversation: s("fixed")}}},
			Content{Kind: KindEdit, MessageType: TypeEdit, Body: "fixed", TargetID: "3EB0TARGET"}},
		{"edit wrapped", &waE2E.Message{EditedMessage: &waE2E.FutureProofMessage{Message: &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{
			Type: waE2E.ProtocolMessage_MESSAGE_EDIT.Enum(), Key: key, EditedMessage: img}}}},
			Content{Kind: KindEdit, MessageType: TypeEdit, Body: "look", MediaType: "image/jpeg", TargetID: "3EB0TARGET"}},
		{"revoke", &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{Type: waE2E.ProtocolMessage_REVOKE.Enum(), Key: key}},
			Content{Kind: KindRevoke, MessageType: TypeRevoke, TargetID: "3EB0TARGET"}},
		{"history sync notification", &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{Type: waE2E.ProtocolMessage_HISTORY_SYNC_NOTIFICATION.Enum()}},
			Content{Kind: KindProtocol, MessageType: TypeProtocol, ProtocolType: "HISTORY_SYNC_NOTIFICATION"}},
		{"sender key only", &waE2E.Message{SenderKeyDistributionMessage: &waE2E.SenderKeyDistributionMessage{GroupID: s("g")}},
			Content{Kind: KindProtocol, MessageType: TypeProtocol}},
		{"ephemeral", &waE2E.Message{EphemeralMessage: &waE2E.FutureProofMessage{Message: text}},
			Content{Kind: KindChat, MessageType: TypeText, Body: "hi there"}},
		{"view once v2 in device sent", &waE2E.Message{DeviceSentMessage: &waE2E.DeviceSentMessage{Message: &waE2E.Message{
			ViewOnceMessageV2: &waE2E.FutureProofMessage{Message: img}}}},
			Content{Kind: KindChat, MessageType: TypeImage, MediaType: "image/jpeg", Body: "look"}},
		{"unknown kind kept", &waE2E.Message{EventMessage: &waE2E.EventMessage{Name: s("Party")}},
			Content{Kind: KindChat, MessageType: TypeUnknown}},
		{"text with sender key", &waE2E.Message{Conversation: s("first in group"), SenderKeyDistributionMessage: &waE2E.SenderKeyDistributionMessage{}},
			Content{Kind: KindChat, MessageType: TypeText, Body: "first in group"}},
	} {
		if got := Extract(tc.msg); got != tc.want {
			t.Errorf("%s: Extract = %+v, want %+v", tc.name, got, tc.want)
		}
	}
}
