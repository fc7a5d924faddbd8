package store

import "context"

// SendCheck is what send-message must know before it sends: the document
// already recorded under the send's WhatsApp id, and the outbox item of
// its idempotency key. Each has its own error, ErrNotFound when absent.
type SendCheck struct {
	Message    Message
	MessageErr error
	Outbox     OutboxItem
	OutboxErr  error
}

// SendChecker is a Store that reads both in one round trip. Every send
// pays this check before WhatsApp sees the message, so on Firestore two
// concurrent reads become one BatchGetDocuments.
type SendChecker interface {
	CheckSend(ctx context.Context, accountID, waMessageID, requestID string) SendCheck
}

// CheckSend reads both: in one round trip where st can, else FindMessage
// and GetOutbox concurrently, so the check costs the slower of the two.
func CheckSend(ctx context.Context, st Store, accountID, waMessageID, requestID string) SendCheck {
	if c, ok := st.(SendChecker); ok {
		return c.CheckSend(ctx, accountID, waMessageID, requestID)
	}
	var c SendCheck
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Outbox, c.OutboxErr = st.GetOutbox(ctx, requestID)
	}()
	c.Message, c.MessageErr = st.FindMessage(ctx, accountID, waMessageID)
	<-done
	return c
}
