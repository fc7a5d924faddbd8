package msgbuild

import (
	"strings"
	"testing"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"
)

// The fingerprintHash of every path equals the old service's for the same
// message. Expected values come from pkg/dedupe/testdata/legacy_fingerprint.js
// (an independent Node implementation of the old formula).
func TestFingerprintHashLikeOldService(t *testing.T) {
	peer := types.NewJID("40722000111", types.DefaultUserServer)
	group := types.NewJID("120363012345678901", types.GroupServer)
	me := types.JID{User: "40722000111", Device: 12, Server: types.DefaultUserServer}
	lid := types.NewJID("123456789012345", types.HiddenUserServer)
	pn := types.NewJID("40733000222", types.DefaultUserServer)
	build := func(ev Input) string {
		t.Helper()
		ev.AccountID = acc
		r, err := Build(ev)
		if err != nil {
			t.Fatal(err)
		}
		return r.Message.FingerprintHash
	}
	text := func(s string) *waE2E.Message { return &waE2E.Message{Conversation: proto.String(s)} }
	for _, c := range []struct {
		name, got, want string
	}{
		{"inbound 1:1 (the sender is not in the seed)", build(Input{Event: event(peer, peer, false, "IN1", text("  Hello \n\t world "))}), "cd087164"},
		{"echo of a send", build(Input{Event: event(peer, me, true, "OUT1", text("hi"))}), "d980e3c2"},
		{"group, from me", build(Input{Event: event(group, me, true, "G1", &waE2E.Message{ImageMessage: &waE2E.ImageMessage{Mimetype: proto.String("image/jpeg")}})}), "8e01e382"},
		// The old service seeded the participant as WhatsApp sent it,
		// even when wactl resolves it to the phone JID.
		{"group, lid participant resolved", build(Input{Event: event(group, lid, false, "G2", text("x")), Sender: pn}), "76708375"},
		{"voice note", build(Input{Event: event(peer, peer, false, "V1", &waE2E.Message{AudioMessage: &waE2E.AudioMessage{PTT: proto.Bool(true)}})}), "9d727508"},
		{"body longer than stored", build(Input{Event: event(peer, peer, false, "L1", text(strings.Repeat("ș", MaxBodyChars+5)))}), "76c80469"},
	} {
		if c.got != c.want {
			t.Errorf("%s: fingerprintHash %s, want %s", c.name, c.got, c.want)
		}
	}
	sent, err := BuildOutbound(Outbound{AccountID: acc, ToJID: "40722000111@s.whatsapp.net", RequestID: strings.Repeat("ab", 32),
		Body: "hi", WAMessageID: "OUT1", Status: "sent", At: at, SenderJID: me.String()})
	if err != nil {
		t.Fatal(err)
	}
	if sent.FingerprintHash != "d980e3c2" {
		t.Errorf("outbound send: fingerprintHash %s, want d980e3c2", sent.FingerprintHash)
	}
}
