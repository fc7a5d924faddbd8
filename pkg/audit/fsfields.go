package audit

import (
	"strconv"
	"strings"
	"time"
)

// Readers of raw Firestore fields: old documents do not always have the
// types the contract names, so every reader accepts what the old system
// wrote and reports what it could not use.

func fsString(m map[string]any, k string) string {
	if s, ok := m[k].(string); ok {
		return s
	}
	return ""
}

func fsInt(m map[string]any, k string) (int64, bool) {
	switch v := m[k].(type) {
	case int64:
		return v, true
	case float64:
		return int64(v), true
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		return n, err == nil
	}
	return 0, false
}

// fsTime reads a Timestamp, epoch milliseconds, or a time string.
func fsTime(m map[string]any, k string) (time.Time, bool) {
	switch v := m[k].(type) {
	case time.Time:
		return v.UTC(), true
	case int64, float64:
		n, _ := fsInt(m, k)
		return epochTime(n), true
	case string:
		return ParseTimeString(v)
	}
	return time.Time{}, false
}

// timeLayouts are the string forms the old system's JavaScript produced
// (Date#toISOString, Date#toString-like, SQL-ish).
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.000Z07:00",
	"2006-01-02T15:04:05",
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02 15:04:05",
	"Mon Jan 02 2006 15:04:05 GMT-0700",
	time.RFC1123Z,
	time.RFC1123,
}

// ParseTimeString reads a tsClient the old system stored as a string: an
// ISO or similar date, or epoch seconds or milliseconds in digits.
func ParseTimeString(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, false
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n <= 0 {
			return time.Time{}, false
		}
		return epochTime(n), true
	}
	if i := strings.Index(s, " ("); i > 0 { // "… GMT+0200 (Eastern European Time)"
		s = s[:i]
	}
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// epochTime reads epoch seconds or milliseconds: below 1e11 a value is
// seconds (1e11 ms is 1973; 1e11 s is year 5138).
func epochTime(n int64) time.Time {
	if n < 1e11 {
		return time.Unix(n, 0).UTC()
	}
	return time.UnixMilli(n).UTC()
}

// completenessFields are the contract's message fields that make a copy
// more useful to keep.
var completenessFields = []string{
	"accountId", "clientJid", "canonicalThreadId", "senderJid", "senderName",
	"direction", "body", "waMessageId", "providerMessageId", "clientMessageId",
	"status", "messageType", "tsClient", "tsClientMs", "createdAt", "ingestedAt",
	"source", "stableKeyHash", "fingerprintHash", "schemaVersion",
}

func completeness(m map[string]any) int {
	n := 0
	for _, k := range completenessFields {
		switch v := m[k].(type) {
		case nil:
		case string:
			if v != "" {
				n++
			}
		default:
			n++
		}
	}
	return n
}

// markFields are the fields cleanup sets on a duplicate.
var markFields = []string{"isDuplicate", "duplicateOf", "duplicateMarkedAt", "cleanupRunId"}
