package daemon

import (
	"context"
	"errors"
	"fmt"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"

	"github.com/wactl/wactl/pkg/store"
)

// requestHistory asks the account's phone for recent history: WhatsApp's
// on-demand history request (a peer message to our own phone), one per
// chat, for up to count messages before the newest message we hold in
// each of the chats most recently active. The protocol anchors every
// request at a known message, so chats without one cannot be asked for.
// The phone answers with history-sync notifications, which go through the
// durable queue like any other. It returns how many chats were asked.
func (a *account) requestHistory(ctx context.Context, chats, count int) (int, error) {
	a.mu.Lock()
	cli := a.cli
	a.mu.Unlock()
	if cli == nil || !cli.IsLoggedIn() || cli.Store.ID == nil {
		return 0, ErrNotConnected
	}
	st := a.m.o.Store
	threads, err := st.ListThreads(ctx, a.id, store.Page{Limit: chats})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return 0, fmt.Errorf("list chats: %w", err)
	}
	own := cli.Store.ID.ToNonAD()
	asked := 0
	for _, th := range threads {
		msgs, err := st.ListMessages(ctx, th.ID, store.Page{Limit: 1})
		if err != nil || len(msgs) == 0 {
			continue
		}
		m := msgs[0]
		jid := th.ClientJIDRaw
		if jid == "" {
			jid = th.ClientJID
		}
		chat, err := types.ParseJID(jid)
		if err != nil || chat.IsEmpty() {
			continue
		}
		id := m.WAMessageIDRaw
		if id == "" {
			id = m.WAMessageID
		}
		info := &types.MessageInfo{
			MessageSource: types.MessageSource{Chat: chat, IsFromMe: m.Direction == "outbound", IsGroup: th.IsGroup},
			ID:            id, Timestamp: m.TsClient,
		}
		if _, err := cli.SendMessage(ctx, own, cli.BuildHistorySyncRequest(info, count), whatsmeow.SendRequestExtra{Peer: true}); err != nil {
			return asked, fmt.Errorf("history request for %s: %w", chat, err)
		}
		asked++
	}
	return asked, nil
}

// RequestHistory is requestHistory for the API (POST
// /api/whatsapp/backfill/:accountId): it returns ErrNoAccount for an
// unknown account and ErrNotConnected when this instance does not drive it.
func (m *Manager) RequestHistory(ctx context.Context, accountID string, chats, count int) (int, error) {
	m.mu.Lock()
	a := m.accounts[accountID]
	m.mu.Unlock()
	if a == nil {
		return 0, ErrNoAccount
	}
	return a.requestHistory(ctx, chats, count)
}
