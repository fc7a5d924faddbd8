// Computes fingerprintHash vectors exactly as the old Node service did
// (legacy-contract.md, "strong fingerprint"): the seed
//   <canonicalJid>|<direction>|<senderJid>|<tsClientMs or "unknown">|<messageType>|<sha1(normalizedText)[:8]>
// with senderJid = the participant in a group and "" in a 1:1 chat, hashed
// twice: fingerprint = sha1(seed), fingerprintHash = sha1(fingerprint)[:8].
// Run once with `node legacy_fingerprint.js`; the output is pasted into
// fingerprint_vectors_test.go. It shares no code with the Go side.
const crypto = require('crypto');
const sha1 = (v) => crypto.createHash('sha1').update(String(v)).digest('hex');
const normalize = (t) => String(t).trim().replace(/\s+/g, ' ');

const vectors = [
  { name: 'inbound 1:1', jid: '40712345678@s.whatsapp.net', dir: 'inbound', participant: '', ts: 1767225600000, type: 'text', text: '  Hello \n\t world ' },
  { name: 'outbound 1:1', jid: '40712345678@s.whatsapp.net', dir: 'outbound', participant: '', ts: 1767225601000, type: 'text', text: 'Ne vedem mâine la 10' },
  { name: 'group inbound', jid: '120363012345678901@g.us', dir: 'inbound', participant: '40722222222@s.whatsapp.net', ts: 1767225602000, type: 'text', text: 'salut' },
  { name: 'group outbound without participant', jid: '120363012345678901@g.us', dir: 'outbound', participant: '', ts: 1767225603000, type: 'text', text: 'ok' },
  { name: 'unknown time image', jid: '40712345678@s.whatsapp.net', dir: 'inbound', participant: '', ts: 0, type: 'image', text: '' },
  { name: 'js whitespace', jid: '40712345678@s.whatsapp.net', dir: 'inbound', participant: '', ts: 1767225604000, type: 'text', text: '\ufeffa\u00a0\u2003b\u3000 c\u0085d ' },
  { name: 'voice note is audio', jid: '40712345678@s.whatsapp.net', dir: 'inbound', participant: '', ts: 1767225605000, type: 'audio', text: '' },
  { name: 'lid chat', jid: '123456789012345@lid', dir: 'inbound', participant: '', ts: 1767225606000, type: 'text', text: 'din lid' },
  // pkg/store/msgbuild's events (2026-01-01T00:00:00Z).
  { name: 'msgbuild inbound', jid: '40722000111@s.whatsapp.net', dir: 'inbound', participant: '', ts: 1767225600000, type: 'text', text: '  Hello \n\t world ' },
  { name: 'msgbuild send and echo', jid: '40722000111@s.whatsapp.net', dir: 'outbound', participant: '', ts: 1767225600000, type: 'text', text: 'hi' },
  { name: 'msgbuild group from me', jid: '120363012345678901@g.us', dir: 'outbound', participant: '40722000111@s.whatsapp.net', ts: 1767225600000, type: 'image', text: '' },
  { name: 'msgbuild group lid participant', jid: '120363012345678901@g.us', dir: 'inbound', participant: '123456789012345@lid', ts: 1767225600000, type: 'text', text: 'x' },
  { name: 'msgbuild voice', jid: '40722000111@s.whatsapp.net', dir: 'inbound', participant: '', ts: 1767225600000, type: 'audio', text: '' },
  { name: 'msgbuild long body', jid: '40722000111@s.whatsapp.net', dir: 'inbound', participant: '', ts: 1767225600000, type: 'text', text: '\u0219'.repeat(10005) },
];

for (const v of vectors) {
  const sender = v.jid.endsWith('@g.us') ? v.participant || '' : '';
  const seed = `${v.jid}|${v.dir}|${sender}|${v.ts || 'unknown'}|${v.type}|${sha1(normalize(v.text)).slice(0, 8)}`;
  const fp = sha1(seed);
  console.log(JSON.stringify({ name: v.name, fingerprint: fp, fingerprintHash: sha1(fp).slice(0, 8) }));
}
