package daemon

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

func getEncoded(h http.Handler, path, rid, acceptEncoding string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("GET", path, nil)
	req.RemoteAddr = "127.0.0.1:1234"
	if rid != "" {
		req.Header.Set("X-Request-ID", rid)
	}
	if acceptEncoding != "" {
		req.Header.Set("Accept-Encoding", acceptEncoding)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// gunzipOne decodes b as exactly one gzip member (CRC and length checked
// by the reader) with nothing after it.
func gunzipOne(t *testing.T, b []byte) string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not gzip: %v", err)
	}
	zr.Multistream(false)
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gzip body does not decode: %v", err)
	}
	if err := zr.Close(); err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// Issue 21 item 3: the dashboard of 200 accounts is 111 KB. A client that
// accepts gzip gets it compressed, and decoded it is byte for byte the
// plain answer with its own request id; clients that do not ask, or
// refuse gzip, get the plain answer.
func TestDashboardGzip(t *testing.T) {
	h, _ := cachedHandler(t, func() Status { return manyAccounts(200) }, nil)
	plain := NewHandler(HandlerOptions{Status: func() Status { return manyAccounts(200) }})
	rids := []string{"", "r1", `<&>"\` + "\x7e", strings.Repeat("z", 128), strings.Repeat("<", 128)}
	for hi, handler := range []http.Handler{h, plain} {
		for _, rid := range rids {
			rec := getEncoded(handler, "/api/status/dashboard", rid, "br, gzip;q=0.8, deflate")
			if rec.Code != 200 || rec.Header().Get("Content-Encoding") != "gzip" {
				t.Fatalf("Accept-Encoding gzip: %d, Content-Encoding %q", rec.Code, rec.Header().Get("Content-Encoding"))
			}
			if got := rec.Header().Get("Vary"); got != "Accept-Encoding" {
				t.Fatalf("Vary %q", got)
			}
			if cl := rec.Header().Get("Content-Length"); cl != strconv.Itoa(rec.Body.Len()) {
				t.Fatalf("Content-Length %s for %d bytes", cl, rec.Body.Len())
			}
			got := gunzipOne(t, rec.Body.Bytes())
			id := rid
			if id == "" {
				// A generated id: take it from the header and ask the
				// plain answer with it.
				id = rec.Header().Get("X-Request-Id")
			}
			want := getEncoded(plain, "/api/status/dashboard", id, "")
			if want.Header().Get("Content-Encoding") != "" {
				t.Fatal("plain answer encoded without Accept-Encoding")
			}
			if got != want.Body.String() {
				t.Fatalf("rid %q: decoded gzip answer differs from the plain one:\n%s\n%s", rid, got, want.Body.String())
			}
			if rid == "r1" && hi == 0 {
				t.Logf("dashboard of 200 accounts: %d bytes, %d gzipped", want.Body.Len(), rec.Body.Len())
			}
			if rec.Body.Len()*5 > want.Body.Len() {
				t.Fatalf("compressed %d bytes of %d: less than 5×", rec.Body.Len(), want.Body.Len())
			}
		}
	}
	for _, ae := range []string{"", "identity", "gzip;q=0", "deflate, gzip; q=0.000", "br", "*"} {
		rec := getEncoded(h, "/api/status/dashboard", "x", ae)
		if rec.Header().Get("Content-Encoding") != "" || !strings.HasPrefix(rec.Body.String(), `{"accounts":[`) {
			t.Fatalf("Accept-Encoding %q: got an encoded answer (%q)", ae, rec.Header().Get("Content-Encoding"))
		}
		if rec.Header().Get("Vary") != "Accept-Encoding" {
			t.Fatalf("Accept-Encoding %q: Vary %q", ae, rec.Header().Get("Vary"))
		}
	}
	// The flat view is ~150 bytes: not worth compressing.
	if rec := getEncoded(h, "/api/status/dashboard?view=flat", "x", "gzip"); rec.Header().Get("Content-Encoding") != "" {
		t.Fatal("flat view compressed")
	}
}

// Go's client asks for gzip itself and decodes it transparently (as the
// app's HttpClient and browsers do): over a real server the dashboard
// arrives compressed and decodes to the plain answer.
func TestDashboardGzipOverHTTP(t *testing.T) {
	h, _ := cachedHandler(t, func() Status { return manyAccounts(200) }, nil)
	srv := httptest.NewServer(h)
	defer srv.Close()
	var wire int64
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest("GET", srv.URL+"/api/status/dashboard", nil)
	req.Header.Set("X-Request-ID", "over-http")
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !resp.Uncompressed {
		t.Fatal("the client did not get a compressed answer")
	}
	wire = resp.ContentLength // -1: the transport hides it once decoded
	want := getEncoded(h, "/api/status/dashboard", "over-http", "")
	if string(body) != want.Body.String() {
		t.Fatalf("decoded answer differs (%d vs %d bytes, wire %d)", len(body), want.Body.Len(), wire)
	}
}

// /health leaves its Content-Length to the server when it is small
// (writeSpliced): over a real server every answer still carries the exact
// length, never chunked, for GET and HEAD, small or large.
func TestStatusAnswersCarryContentLength(t *testing.T) {
	big := manyAccounts(200)
	big.StoreReachable, big.StoreError = false, strings.Repeat("e", 3000) // a warning longer than the buffer
	for _, st := range []Status{manyAccounts(200), big} {
		h, _ := cachedHandler(t, func() Status { return st }, nil)
		srv := httptest.NewServer(h)
		for _, path := range []string{"/health", "/api/status/dashboard", "/api/status/dashboard?view=flat"} {
			for _, method := range []string{"GET", "HEAD"} {
				req, _ := http.NewRequest(method, srv.URL+path, nil)
				req.Header.Set("Accept-Encoding", "identity")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				want := getEncoded(h, path, "x", "")
				if len(resp.TransferEncoding) > 0 || resp.ContentLength <= 0 {
					t.Fatalf("%s %s: chunked or no length (%v, %d)", method, path, resp.TransferEncoding, resp.ContentLength)
				}
				// The request id differs (generated): compare lengths
				// with an id of the same length.
				if method == "GET" && path == "/health" && (len(body) > serverBuffered) != (st.StoreError != "") {
					t.Fatalf("/health of %d bytes: not the case meant (buffer %d)", len(body), serverBuffered)
				}
				if method == "GET" && int64(len(body)) != resp.ContentLength {
					t.Fatalf("%s %s: Content-Length %d, body %d", method, path, resp.ContentLength, len(body))
				}
				if method == "HEAD" && (len(body) != 0 || resp.ContentLength < int64(want.Body.Len()-2)) {
					t.Fatalf("HEAD %s: body %d, Content-Length %d (GET body ~%d)", path, len(body), resp.ContentLength, want.Body.Len())
				}
			}
		}
		srv.Close()
	}
}
