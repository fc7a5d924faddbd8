package api

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/wactl/wactl/pkg/dedupe"
	"github.com/wactl/wactl/pkg/store"
)

// Page sizes of the read routes. The app asks limit=500 and does not
// follow nextCursor, so a page holds at least that; larger asks get 500
// and a nextCursor.
const (
	defaultLimit = 50
	maxLimit     = 500
)

// parseLimit reads ?limit=: absent → 50, above 500 → 500, not a positive
// integer → error.
func parseLimit(r *http.Request) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return defaultLimit, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, errors.New("limit must be a positive integer")
	}
	return min(n, maxLimit), nil
}

// readAccount resolves the account of a read route and its own JIDs (the
// self-chat, excluded from every list); false means answered (404). The
// threads and inbox routes answer an unknown account with an empty list
// instead, as the old service did and the app expects.
func (a *API) readAccount(w http.ResponseWriter, r *http.Request) (string, map[string]bool, bool) {
	id, self, known := a.accountJIDs(r)
	if !known {
		fail(w, r, http.StatusNotFound, "account_not_found", "no account "+id)
		return "", nil, false
	}
	return id, self, true
}

// accountJIDs is the account id of r, its own JIDs, and whether it is
// known (in memory, or stored and not deleted).
func (a *API) accountJIDs(r *http.Request) (string, map[string]bool, bool) {
	id := r.PathValue("accountId")
	self := map[string]bool{"status@broadcast": true}
	addPhone := func(p string) {
		if d := strings.TrimPrefix(p, "+"); d != "" {
			self[d+"@"+dedupe.ServerUser] = true
		}
	}
	st, live := a.findAccount(id)
	sa, stored := a.accts.get(r.Context())[id]
	if !live && (!stored || sa.Status == "deleted") {
		return id, nil, false
	}
	addPhone(st.Phone)
	addPhone(sa.PhoneE164)
	if sa.WAJid != "" {
		self[dedupe.CanonicalJID(sa.WAJid)] = true
	}
	return id, self, true
}

func (a *API) listThreads(w http.ResponseWriter, r *http.Request) {
	limit, err := parseLimit(r)
	if err != nil {
		fail(w, r, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	if ob := r.URL.Query().Get("orderBy"); ob != "" && ob != "lastMessageAt" {
		fail(w, r, http.StatusBadRequest, "invalid_request", "orderBy supports only lastMessageAt")
		return
	}
	id, self, known := a.accountJIDs(r)
	if !known {
		writeJSON(w, r, http.StatusOK, map[string]any{"threads": []any{}, "count": 0, "nextCursor": nil})
		return
	}
	cursor := r.URL.Query().Get("cursor")
	ts, next, err := collect(limit, cursor,
		func(p store.Page) ([]store.Thread, error) { return a.d.Store.ListThreads(r.Context(), id, p) },
		func(t store.Thread) bool { return self[t.ClientJID] }, func(t store.Thread) string { return t.Cursor })
	if err != nil {
		a.readFailed(w, r, err)
		return
	}
	out := make([]map[string]any, 0, len(ts))
	for _, t := range ts {
		out = append(out, threadJSON(t))
	}
	writeJSON(w, r, http.StatusOK, map[string]any{"threads": out, "count": len(out), "nextCursor": orNil(next)})
}

func (a *API) inbox(w http.ResponseWriter, r *http.Request) {
	limit, err := parseLimit(r)
	if err != nil {
		fail(w, r, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	id, self, known := a.accountJIDs(r)
	if !known {
		writeJSON(w, r, http.StatusOK, map[string]any{"messages": []any{}, "count": 0, "nextCursor": nil})
		return
	}
	// One query (collection group / indexed) per page, never one per
	// thread; notes to self are skipped by collect.
	ms, next, err := collect(limit, r.URL.Query().Get("cursor"),
		func(p store.Page) ([]store.Message, error) { return a.d.Store.Inbox(r.Context(), id, p) },
		func(m store.Message) bool { return self[m.ClientJID] }, func(m store.Message) string { return m.Cursor })
	if err != nil {
		a.readFailed(w, r, err)
		return
	}
	out := make([]map[string]any, 0, len(ms))
	for _, m := range ms {
		j := messageJSON(m)
		j["displayName"] = displayName(m)
		out = append(out, j)
	}
	writeJSON(w, r, http.StatusOK, map[string]any{"messages": out, "count": len(out), "nextCursor": orNil(next)})
}

// displayName without reading the thread: the sender's push name of an
// inbound direct message, else the peer's number, else the JID.
func displayName(m store.Message) string {
	switch {
	case m.DisplayName != "":
		return m.DisplayName
	case m.Direction == "inbound" && !m.IsGroup && m.SenderName != "":
		return m.SenderName
	case m.NormalizedPhone != "":
		return m.NormalizedPhone
	}
	return m.ClientJID
}

func (a *API) listMessages(w http.ResponseWriter, r *http.Request) {
	limit, err := parseLimit(r)
	if err != nil {
		fail(w, r, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	acc, tid := r.PathValue("accountId"), r.PathValue("threadId")
	if !strings.HasPrefix(tid, acc+"__") || len(tid) == len(acc)+2 {
		fail(w, r, http.StatusBadRequest, "invalid_thread", "threadId must be <accountId>__<jid> of this account")
		return
	}
	if _, _, ok := a.readAccount(w, r); !ok {
		return
	}
	t, err := a.d.Store.GetThread(r.Context(), tid)
	if errors.Is(err, store.ErrNotFound) {
		fail(w, r, http.StatusNotFound, "thread_not_found", "no thread "+tid)
		return
	}
	if err != nil {
		a.readFailed(w, r, err)
		return
	}
	ms, next, err := collect(limit, r.URL.Query().Get("cursor"),
		func(p store.Page) ([]store.Message, error) { return a.d.Store.ListMessages(r.Context(), tid, p) },
		func(store.Message) bool { return false }, func(m store.Message) string { return m.Cursor })
	if err != nil {
		a.readFailed(w, r, err)
		return
	}
	out := make([]map[string]any, 0, len(ms))
	for _, m := range ms {
		out = append(out, messageJSON(m))
	}
	writeJSON(w, r, http.StatusOK, map[string]any{"thread": threadJSON(t), "messages": out, "count": len(out), "nextCursor": orNil(next)})
}

// scanBudget bounds the items one read request looks at: an account whose
// newest items are mostly notes to self answers a short page with a
// nextCursor rather than scanning its whole history in one request.
const scanBudget = 16 * maxLimit

// collect fills one page of up to limit items not skipped, following the
// store's cursors from after. next is the cursor of the last item looked
// at when more items exist, "" at the end of the listing: the store is
// asked for one item more than needed, so the end is known exactly.
func collect[T any](limit int, after string, list func(store.Page) ([]T, error), skip func(T) bool, cursor func(T) string) (out []T, next string, err error) {
	pos, scanned := after, 0
	for {
		// A little more than needed: notes to self are dropped.
		want := limit - len(out) + 1 + 10
		items, err := list(store.Page{Limit: want, After: pos})
		if err != nil {
			return nil, "", err
		}
		for _, it := range items {
			if skip(it) {
				pos = cursor(it)
				scanned++
				continue
			}
			if len(out) == limit {
				return out, pos, nil // it proves there is more
			}
			out = append(out, it)
			pos = cursor(it)
			scanned++
		}
		if len(items) < want {
			return out, "", nil
		}
		if scanned >= scanBudget {
			return out, pos, nil
		}
	}
}

func (a *API) readFailed(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, store.ErrBadCursor) {
		fail(w, r, http.StatusBadRequest, "invalid_cursor", "cursor is not a nextCursor of this listing: drop it to start from the newest")
		return
	}
	a.log.Error("store read failed", "err", err)
	if diskFull(err) {
		failDiskFull(w, r)
		return
	}
	fail(w, r, http.StatusServiceUnavailable, "store_unavailable", "the message store cannot be read right now; retry shortly")
}

func msOrNil(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

// threadJSON has the field names of threads/{threadId}.
func threadJSON(t store.Thread) map[string]any {
	return map[string]any{
		"id": t.ID, "accountId": t.AccountID, "clientJid": t.ClientJID, "clientJidRaw": t.ClientJIDRaw,
		"rawJid": t.RawJID, "resolvedJid": t.ResolvedJID, "canonicalThreadId": t.CanonicalThreadID,
		"peerType": t.PeerType, "isGroup": t.IsGroup,
		"lastMessageAt": isoTime(t.LastMessageAt), "lastMessageAtMs": msOrNil(t.LastMessageAt),
		"lastMessageText": t.LastMessageText, "lastMessagePreview": t.LastMessagePreview,
		"lastMessageSenderName": t.LastMessageSenderName, "lastMessageDirection": t.LastMessageDirection,
		"displayName": t.DisplayName, "groupSubject": t.GroupSubject, "normalizedPhone": t.NormalizedPhone,
		"updatedAt": isoTime(t.UpdatedAt), "hidden": t.Hidden, "archived": t.Archived, "redirectTo": orNil(t.RedirectTo),
	}
}

// messageJSON has the field names of threads/{threadId}/messages/{docId}.
func messageJSON(m store.Message) map[string]any {
	return map[string]any{
		"messageId": m.DocID, "id": m.DocID, "threadId": m.ThreadID, "accountId": m.AccountID,
		"clientJid": m.ClientJID, "clientJidRaw": m.ClientJIDRaw, "rawJid": m.RawJID, "resolvedJid": m.ResolvedJID,
		"normalizedPhone": m.NormalizedPhone, "peerType": m.PeerType, "isGroup": m.IsGroup,
		"senderJid": m.SenderJID, "senderName": m.SenderName, "direction": m.Direction, "body": m.Body,
		"waMessageId": m.WAMessageID, "waMessageIdRaw": m.WAMessageIDRaw, "providerMessageId": m.ProviderMessageID,
		"clientMessageId": m.ClientMessageID, "status": m.Status, "messageType": m.MessageType, "mediaType": m.MediaType,
		"tsClient": isoTime(m.TsClient), "tsClientMs": msOrNil(m.TsClient),
		"createdAt": isoTime(m.CreatedAt), "createdAtMs": msOrNil(m.TsClient), "ingestedAt": isoTime(m.IngestedAt),
		"deliveredAt": isoTime(m.DeliveredAt), "readAt": isoTime(m.ReadAt),
		"source": m.Source, "stableKeyHash": m.StableKeyHash, "fingerprintHash": m.FingerprintHash,
		"edited": m.Edited, "revoked": m.Revoked, "isDuplicate": m.IsDuplicate, "duplicateOf": orNil(m.DuplicateOf),
	}
}
