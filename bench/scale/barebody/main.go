// Command barebody is the bare baseline of bench/scale.sh: a bare net/http
// server answering /health with a small JSON body (as bench/barehttp) and
// /dashboard with a fixed body of -bytes bytes, so that the dashboard of N
// accounts is also compared with a bare handler writing as many bytes, and
// /dashgz with one of -gzbytes bytes (the size of the gzipped dashboard).
package main

import (
	"bytes"
	"flag"
	"log"
	"net/http"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18081", "listen address")
	size := flag.Int("bytes", 100_000, "size of the /dashboard body")
	gzSize := flag.Int("gzbytes", 10_000, "size of the /dashgz body")
	flag.Parse()
	small := []byte(`{"ok":true,"status":"ok"}` + "\n")
	pad := func(n int) []byte {
		b := append([]byte(`{"pad":"`), bytes.Repeat([]byte("x"), max(0, n-11))...)
		return append(b, "\"}\n"...)
	}
	big, gz := pad(*size), pad(*gzSize)
	http.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(small)
	})
	http.HandleFunc("/dashboard", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(big)
	})
	http.HandleFunc("/dashgz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(gz)
	})
	log.Fatal(http.ListenAndServe(*addr, nil))
}
