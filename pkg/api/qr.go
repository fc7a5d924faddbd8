package api

import (
	"encoding/base64"
	"html/template"
	"net/http"
	"sync"

	qrcode "github.com/skip2/go-qrcode"
)

// qrCache renders each QR string to a PNG data URL once: the app polls the
// accounts list every 2 s while a QR (which changes every ~20 s) shows.
type qrCache struct {
	mu sync.Mutex
	m  map[string]cachedQR // by account id
}

type cachedQR struct{ qr, url string }

func newQRCache() *qrCache { return &qrCache{m: map[string]cachedQR{}} }

// dataURL is the QR as data:image/png;base64,…; empty when it cannot be
// rendered (longer than a QR holds).
func (c *qrCache) dataURL(accountID, qr string) string {
	if qr == "" {
		return ""
	}
	c.mu.Lock()
	if e, ok := c.m[accountID]; ok && e.qr == qr {
		c.mu.Unlock()
		return e.url
	}
	c.mu.Unlock()
	png, err := qrcode.Encode(qr, qrcode.Medium, 320)
	if err != nil {
		return ""
	}
	url := "data:image/png;base64," + base64.StdEncoding.EncodeToString(png)
	c.mu.Lock()
	c.m[accountID] = cachedQR{qr: qr, url: url}
	c.mu.Unlock()
	return url
}

var qrPageTmpl = template.Must(template.New("qr").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{{.Refresh}}">
<meta name="robots" content="noindex">
<meta name="request-id" content="{{.RequestID}}">
<title>wactl · {{.AccountID}}</title>
<style>body{font-family:system-ui,sans-serif;text-align:center;margin:2rem}img{width:320px;height:320px;image-rendering:pixelated}</style>
</head><body>
{{if .QR}}<h1>Scan with WhatsApp</h1>
<p>WhatsApp → Settings → Linked devices → Link a device</p>
<img alt="QR code" src="{{.QR}}">
<p>{{.AccountID}} · refreshes every {{.Refresh}} s</p>
{{else if .Code}}<h1>Pairing code</h1><p style="font-size:2rem;letter-spacing:.2em">{{.Code}}</p>
<p>{{.AccountID}} · refreshes every {{.Refresh}} s</p>
{{else}}<h1>No QR code</h1><p>{{.AccountID}} is not pairing ({{.Status}}). Start pairing with regenerate-qr.</p>{{end}}
</body></html>
`))

type qrPageData struct {
	AccountID, Status, Code, RequestID string
	QR                                 template.URL
	Refresh                            int
}

// qrPage is the admin's HTML view of an account's QR code; it refreshes
// itself so a new QR appears without reloading by hand.
func (a *API) qrPage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("accountId")
	st, known := a.findAccount(id)
	d := qrPageData{AccountID: id, Refresh: 5, RequestID: requestID(r)}
	code := http.StatusOK
	p, pairing := a.d.WhatsApp.Pairing(id)
	switch {
	case !known:
		code, d.Status = http.StatusNotFound, "unknown account"
	case pairing && p.QR != "":
		d.QR = template.URL(a.qr.dataURL(id, p.QR))
	case pairing && p.PairingCode != "":
		d.Code = p.PairingCode
	default:
		code, d.Status = http.StatusNotFound, st.State
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; img-src data:; style-src 'unsafe-inline'")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(code)
	_ = qrPageTmpl.Execute(w, d)
}
