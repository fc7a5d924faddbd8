package dedupe

import "testing"

// legacyVectors were computed by testdata/legacy_fingerprint.js, an
// independent Node implementation of the old service's formula (sha1 of the
// seed, then the first 8 hex of sha1 of that). Documents of both writers
// must carry the same fingerprintHash for the same message.
var legacyVectors = []struct {
	name                  string
	jid, dir, participant string
	ts                    int64
	typ, text             string
	fingerprint, hash     string
}{
	{"inbound 1:1", "40712345678@s.whatsapp.net", "inbound", "", 1767225600000, TypeText, "  Hello \n\t world ",
		"74e70a4b0b88b75002bcebab521d73127e6801d1", "d319f004"},
	{"outbound 1:1", "40712345678@s.whatsapp.net", "outbound", "", 1767225601000, TypeText, "Ne vedem mâine la 10",
		"4d3c47c7afab8256c231bc1cc8fbff3bade8d4c2", "ec24e15b"},
	{"group inbound", "120363012345678901@g.us", "inbound", "40722222222@s.whatsapp.net", 1767225602000, TypeText, "salut",
		"bdb0b3df26f6af8080aad63929dc44e30c2d2106", "950755c3"},
	{"group outbound without participant", "120363012345678901@g.us", "outbound", "", 1767225603000, TypeText, "ok",
		"a8757db502e08e74d92ee4c547b135a20ca0529b", "89c53892"},
	{"unknown time image", "40712345678@s.whatsapp.net", "inbound", "", 0, TypeImage, "",
		"c6452173743e934bbbdbe034cd027dc9bf21e2d1", "41c78b8c"},
	{"js whitespace", "40712345678@s.whatsapp.net", "inbound", "", 1767225604000, TypeText, "\ufeffa\u00a0\u2003b\u3000 c\u0085d ",
		"207ca1bf5786ffb5c1da90e6aa68449796176207", "0b0ed620"},
	{"voice note is audio", "40712345678@s.whatsapp.net", "inbound", "", 1767225605000, TypeVoice, "",
		"f32030fd364632eb492012ce31647e69c3cc1115", "9b46b475"},
	{"lid chat", "123456789012345@lid", "inbound", "", 1767225606000, TypeText, "din lid",
		"21f20f9e0f4646c31d0103cb3b5f27568b5ba346", "fc691949"},
}

func TestFingerprintHashMatchesOldService(t *testing.T) {
	for _, v := range legacyVectors {
		// The sender a 1:1 chat passes is ignored: the old seed has "" there.
		sender := v.participant
		if sender == "" && PeerType(v.jid) != PeerGroup {
			sender = v.jid
		}
		if got := StrongFingerprint(v.jid, v.dir, sender, v.ts, v.typ, v.text); got != v.fingerprint {
			t.Errorf("%s: StrongFingerprint = %s, want %s", v.name, got, v.fingerprint)
		}
		if got := StrongFingerprintHash(v.jid, v.dir, sender, v.ts, v.typ, v.text); got != v.hash {
			t.Errorf("%s: StrongFingerprintHash = %s, want %s", v.name, got, v.hash)
		}
		if got := FingerprintHash(v.fingerprint); got != v.hash {
			t.Errorf("%s: FingerprintHash(fingerprint) = %s, want %s", v.name, got, v.hash)
		}
	}
}

// Documents wactl wrote before the fix (schemaVersion 2) carry the first 8
// hex of an unhashed fingerprint seeded with the stored senderJid; the audit
// recomputes that form to recognise them.
func TestPreFixFingerprintHash(t *testing.T) {
	jid := "40712345678@s.whatsapp.net"
	// wactl's earlier formula: the 1:1 peer as sender, one sha1.
	want := sha1Hex(jid + "|inbound|" + jid + "|1767225600000|text|" + sha1Hex("Hello world")[:8])[:8]
	if got := PreFixFingerprintHash(jid, "inbound", jid, 1767225600000, TypeText, "  Hello \n\t world "); got != want {
		t.Errorf("PreFixFingerprintHash = %s, want %s", got, want)
	}
}
