package storetest

import (
	"reflect"
	"testing"

	"github.com/wactl/wactl/pkg/store"
)

// testCheckSend: store.CheckSend answers what FindMessage and GetOutbox
// answer one by one, whether the store reads both in one round trip or not.
func testCheckSend(t *testing.T, open Opener) {
	s, _, _ := openFresh(t, open, false)
	acc, other := accountFor(1), accountFor(2)
	const sentID, noneID = "3EB0CHECKSENT", "3EB0CHECKNONE"
	record(t, s, echo(acc, 1, sentID, base, "sent before"), store.Wrote)
	key := enqueue(t, s, acc, 7, base, base)
	for _, tc := range []struct {
		name, acc, waID, key string
		msg, outbox          bool
	}{
		{"neither", acc, noneID, requestID(8), false, false},
		{"message only", acc, sentID, requestID(9), true, false},
		{"outbox only", acc, noneID, key, false, true},
		{"both", acc, sentID, key, true, true},
		{"message of another account", other, sentID, requestID(8), false, false},
	} {
		c := store.CheckSend(ctx(t), s, tc.acc, tc.waID, tc.key)
		m, merr := s.FindMessage(ctx(t), tc.acc, tc.waID)
		it, oerr := s.GetOutbox(ctx(t), tc.key)
		if tc.msg != (c.MessageErr == nil) || !tc.msg && !isNotFound(c.MessageErr) {
			t.Errorf("%s: message error %v, want found=%v", tc.name, c.MessageErr, tc.msg)
		}
		if tc.outbox != (c.OutboxErr == nil) || !tc.outbox && !isNotFound(c.OutboxErr) {
			t.Errorf("%s: outbox error %v, want found=%v", tc.name, c.OutboxErr, tc.outbox)
		}
		if (merr == nil) != (c.MessageErr == nil) || !reflect.DeepEqual(m, c.Message) {
			t.Errorf("%s: message\n got %+v (%v)\nwant %+v (%v), as FindMessage", tc.name, c.Message, c.MessageErr, m, merr)
		}
		if (oerr == nil) != (c.OutboxErr == nil) || !reflect.DeepEqual(it, c.Outbox) {
			t.Errorf("%s: outbox item\n got %+v (%v)\nwant %+v (%v), as GetOutbox", tc.name, c.Outbox, c.OutboxErr, it, oerr)
		}
		if tc.msg && (c.Message.WAMessageID != sentID || c.Message.Status != "sent") {
			t.Errorf("%s: found message %s at %q, want %s at sent", tc.name, c.Message.WAMessageID, c.Message.Status, sentID)
		}
		if tc.outbox && (c.Outbox.RequestID != key || c.Outbox.AccountID != acc || c.Outbox.Status != "queued") {
			t.Errorf("%s: found outbox item %+v, want %s of %s, queued", tc.name, c.Outbox, key, acc)
		}
	}
}
