package daemon

import (
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// /health is what monitors and load tests hammer, so its body is encoded
// by appending, without reflection. encoding/json stays the definition of
// the output: healthjson_test.go and FuzzHealthJSON compare the two byte
// for byte, so any change to healthBody must be mirrored here.

const msLayout = "2006-01-02T15:04:05.000Z07:00"

// jsonMillis is a time as the contract renders it: null when zero, else
// UTC with milliseconds (what ms produces), without boxing a string into
// an interface per request.
type jsonMillis time.Time

func (t jsonMillis) MarshalJSON() ([]byte, error) {
	return appendMillis(nil, time.Time(t)), nil
}

// appendMillis needs no string escaping: a formatted time holds only
// digits, signs, ':', '.', 'T' and 'Z'.
func appendMillis(dst []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(dst, "null"...)
	}
	dst = append(dst, '"')
	u := t.UTC()
	year, month, day := u.Date()
	if year < 0 || year > 9999 {
		// Signs and five-digit years: rare, left to the time package.
		dst = u.AppendFormat(dst, msLayout)
		return append(dst, '"')
	}
	hour, minute, sec := u.Clock()
	dst = appendDigits(dst, year, 4)
	dst = append(dst, '-')
	dst = appendDigits(dst, int(month), 2)
	dst = append(dst, '-')
	dst = appendDigits(dst, day, 2)
	dst = append(dst, 'T')
	dst = appendDigits(dst, hour, 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, minute, 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, sec, 2)
	dst = append(dst, '.')
	dst = appendDigits(dst, u.Nanosecond()/1e6, 3) // truncated, as Format does
	return append(dst, 'Z', '"')
}

// appendDigits appends 0 <= v < 10^width, zero-padded to width.
func appendDigits(dst []byte, v, width int) []byte {
	var b [4]byte
	for i := width - 1; i >= 0; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return append(dst, b[:width]...)
}

// appendHealthJSON appends b exactly as json.Marshal(b) renders it.
func appendHealthJSON(dst []byte, b *healthBody) []byte {
	dst = append(dst, `{"success":`...)
	dst = strconv.AppendBool(dst, b.Success)
	dst = append(dst, `,"requestId":`...)
	dst = appendJSONString(dst, b.RequestID)
	dst = append(dst, `,"ok":`...)
	dst = strconv.AppendBool(dst, b.OK)
	dst = append(dst, `,"status":`...)
	dst = appendJSONString(dst, b.Status)
	dst = append(dst, `,"service":`...)
	dst = appendJSONString(dst, b.Service)
	dst = append(dst, `,"version":`...)
	dst = appendJSONString(dst, b.Version)
	dst = append(dst, `,"commit":`...)
	dst = appendJSONString(dst, b.Commit)
	dst = append(dst, `,"instanceId":`...)
	dst = appendJSONString(dst, b.InstanceID)
	dst = append(dst, `,"waMode":`...)
	dst = appendJSONString(dst, b.WAMode)
	dst = append(dst, `,"lockStatus":`...)
	dst = appendJSONString(dst, b.LockStatus)
	dst = append(dst, `,"lockHolder":`...)
	dst = appendJSONString(dst, b.LockHolder)
	dst = append(dst, `,"lockRemainingSec":`...)
	dst = strconv.AppendInt(dst, b.LockRemainingSec, 10)
	dst = append(dst, `,"lockEpoch":`...)
	dst = strconv.AppendInt(dst, b.LockEpoch, 10)
	dst = append(dst, `,"uptime":`...)
	dst = strconv.AppendInt(dst, b.Uptime, 10)
	dst = append(dst, `,"timestamp":`...)
	dst = appendMillis(dst, time.Time(b.Timestamp))
	dst = append(dst, `,"accounts_total":`...)
	dst = strconv.AppendInt(dst, int64(b.AccountsTotal), 10)
	dst = append(dst, `,"connected":`...)
	dst = strconv.AppendInt(dst, int64(b.Connected), 10)
	dst = append(dst, `,"needs_qr":`...)
	dst = strconv.AppendInt(dst, int64(b.NeedsQR), 10)
	dst = append(dst, `,"sessions_dir_writable":`...)
	dst = strconv.AppendBool(dst, b.SessionsDirWritable)

	dst = append(dst, `,"dedupe":{"wrote":`...)
	dst = strconv.AppendInt(dst, b.Dedupe.Wrote, 10)
	dst = append(dst, `,"skipped":`...)
	dst = strconv.AppendInt(dst, b.Dedupe.Skipped, 10)
	dst = append(dst, `,"strongSkipped":`...)
	dst = strconv.AppendInt(dst, b.Dedupe.StrongSkipped, 10)

	dst = append(dst, `},"history":{"wrote":`...)
	dst = strconv.AppendInt(dst, b.History.Wrote, 10)
	dst = append(dst, `,"skipped":`...)
	dst = strconv.AppendInt(dst, b.History.Skipped, 10)
	dst = append(dst, `,"lastRunAt":`...)
	dst = appendMillis(dst, time.Time(b.History.LastRunAt))
	dst = append(dst, `,"lastBatchCount":`...)
	dst = strconv.AppendInt(dst, int64(b.History.LastBatchCount), 10)
	dst = append(dst, `,"queued":`...)
	dst = strconv.AppendInt(dst, int64(b.History.Queued), 10)
	dst = append(dst, `,"lost":`...)
	dst = strconv.AppendInt(dst, int64(b.History.Lost), 10)
	dst = append(dst, `,"parked":`...)
	dst = strconv.AppendInt(dst, int64(b.History.Parked), 10)
	dst = append(dst, `,"notRecorded":`...)
	dst = strconv.AppendInt(dst, b.History.NotRecorded, 10)

	dst = append(dst, `},"store":{"backend":`...)
	dst = appendJSONString(dst, b.Store.Backend)
	dst = append(dst, `,"reachable":`...)
	dst = strconv.AppendBool(dst, b.Store.Reachable)
	dst = append(dst, `,"journalBacklog":`...)
	dst = strconv.AppendInt(dst, int64(b.Store.JournalBacklog), 10)
	dst = append(dst, `,"journalOldestSec":`...)
	dst = strconv.AppendInt(dst, b.Store.JournalOldestSec, 10)
	dst = append(dst, `,"journalDeadLetters":`...)
	dst = strconv.AppendInt(dst, int64(b.Store.JournalDeadLetters), 10)

	dst = append(dst, `},"warnings":`...)
	if b.Warnings == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '[')
		for i, w := range b.Warnings {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, w)
		}
		dst = append(dst, ']')
	}
	return append(dst, '}')
}

// appendJSONString quotes s as encoding/json does with HTML escaping on
// (its default for Marshal and Encoder): invalid UTF-8 becomes U+FFFD,
// control characters, <, >, & and U+2028/U+2029 are escaped.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// bodyPool recycles response buffers: the ResponseWriter copies what it is
// given, so a buffer is free again once Write returns.
var bodyPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// maxPooledBody keeps one huge answer (thousands of warnings) from pinning
// its buffer in the pool.
const maxPooledBody = 64 << 10

func getBody() *[]byte { return bodyPool.Get().(*[]byte) }

func putBody(b *[]byte) {
	if cap(*b) > maxPooledBody {
		return
	}
	*b = (*b)[:0]
	bodyPool.Put(b)
}
