package daemon

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"hash/crc32"
	"net/http"
	"strconv"
	"strings"
)

// The dashboard of 200 accounts is 111 KB of JSON, and a client that asks
// for gzip (the Flutter app's HttpClient, browsers, Go and Node clients do
// by default) gets it compressed about 15×. It is compressed once per
// snapshot, not per request, although every answer carries its own request
// id: the answer is one gzip member whose deflate stream is the snapshot's
// compressed part before the id (ended by a sync flush, so it stops on a
// byte boundary), the id as a stored (uncompressed) block, and the
// compressed part after the id as the final blocks. A deflate stream may
// chain blocks like this; the compressed parts never refer back across the
// id. Only the CRC-32 of the whole text and its length are computed per
// request, over the id and the short part after it.

// gzipMin: smaller answers (the flat view) are not worth compressing.
const gzipMin = 1024

// gzipBody is a splicedBody compressed around its request id.
type gzipBody struct {
	head      []byte // gzip header + deflate(head) + sync flush
	tail      []byte // deflate(tail), ending with the final block
	headCRC   uint32
	headLen   int
	plainTail []byte // the uncompressed tail: its CRC is taken per request
}

// gzipSpliced compresses b around its request id; ok is false when it
// cannot (then the answer is sent as it is).
func gzipSpliced(b splicedBody) (g gzipBody, ok bool) {
	var head bytes.Buffer
	// Header of RFC 1952: magic, deflate, no flags, no mtime, no extra
	// flags, OS unknown (as compress/gzip writes it).
	head.Write([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255})
	fw, err := flate.NewWriter(&head, flate.DefaultCompression)
	if err != nil {
		return g, false
	}
	if _, err := fw.Write(b.head); err != nil {
		return g, false
	}
	if err := fw.Flush(); err != nil { // sync flush: byte-aligned, not final
		return g, false
	}
	var tail bytes.Buffer
	tw, err := flate.NewWriter(&tail, flate.DefaultCompression)
	if err != nil {
		return g, false
	}
	if _, err := tw.Write(b.tail); err != nil {
		return g, false
	}
	if err := tw.Close(); err != nil { // final block
		return g, false
	}
	return gzipBody{
		head: head.Bytes(), tail: tail.Bytes(),
		headCRC: crc32.ChecksumIEEE(b.head), headLen: len(b.head), plainTail: b.tail,
	}, true
}

// writeGzipSpliced answers with g, the request id spliced in as a stored
// deflate block.
func writeGzipSpliced(w http.ResponseWriter, r *http.Request, code int, g gzipBody) {
	buf := getBody()
	// Stored block header: BFINAL 0, BTYPE 00, padded to the byte; then
	// LEN and its complement. The id is at most 128 printable characters,
	// 770 bytes quoted and escaped: far under a stored block's 65,535.
	*buf = append(*buf, 0, 0, 0, 0, 0)
	*buf = appendJSONString(*buf, RequestID(r))
	id := (*buf)[5:]
	n := uint16(len(id))
	binary.LittleEndian.PutUint16((*buf)[1:], n)
	binary.LittleEndian.PutUint16((*buf)[3:], ^n)
	crc := crc32.Update(crc32.Update(g.headCRC, crc32.IEEETable, id), crc32.IEEETable, g.plainTail)
	size := uint32(g.headLen + len(id) + len(g.plainTail))
	*buf = append(*buf, g.tail...)
	*buf = binary.LittleEndian.AppendUint32(*buf, crc)
	*buf = binary.LittleEndian.AppendUint32(*buf, size)
	setJSONHeaders(w)
	h := w.Header()
	h["Content-Encoding"] = gzipEncoding
	h["Content-Length"] = []string{strconv.Itoa(len(g.head) + len(*buf))}
	w.WriteHeader(code)
	_, _ = w.Write(g.head)
	_, _ = w.Write(*buf)
	putBody(buf)
}

var (
	gzipEncoding   = []string{"gzip"}
	varyEncoding   = []string{"Accept-Encoding"}
	acceptEncoding = "Accept-Encoding" // canonical
)

// acceptsGzip reports whether r's Accept-Encoding lists gzip (or x-gzip)
// with a quality above zero (RFC 9110 12.5.3). "*" is not taken as gzip:
// the answer without encoding is always acceptable.
func acceptsGzip(r *http.Request) bool {
	for _, v := range r.Header[acceptEncoding] {
		for part := range strings.SplitSeq(v, ",") {
			name, params, _ := strings.Cut(part, ";")
			name = strings.TrimSpace(name)
			if !strings.EqualFold(name, "gzip") && !strings.EqualFold(name, "x-gzip") {
				continue
			}
			if zeroQuality(params) {
				return false
			}
			return true
		}
	}
	return false
}

// zeroQuality reports whether params (after the coding's ";") set q=0.
func zeroQuality(params string) bool {
	for p := range strings.SplitSeq(params, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		return err == nil && q <= 0
	}
	return false
}
