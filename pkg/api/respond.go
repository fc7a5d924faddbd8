package api

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/wactl/wactl/pkg/daemon"
)

// requestID is the daemon's id of r; outside the daemon's middleware
// (never in production) a fresh one, so answers always carry one.
func requestID(r *http.Request) string {
	if id := daemon.RequestID(r); id != "" {
		return id
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// writeJSON answers as every route of the contract does (success,
// requestId); the daemon's writer, so both packages answer alike.
func writeJSON(w http.ResponseWriter, r *http.Request, status int, body map[string]any) {
	daemon.WriteJSON(w, r, status, body)
}

// fail answers an error: code is the stable machine-readable name, msg
// tells the caller what is wrong and what to do.
func fail(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	body := map[string]any{"error": code}
	if msg != "" {
		body["message"] = msg
	}
	writeJSON(w, r, status, body)
}

// decodeStrict reads one JSON object into dst: unknown fields, trailing
// data and bodies over limit are errors the caller answers with 400/413.
func decodeStrict(w http.ResponseWriter, r *http.Request, limit int64, dst any) (status int, err error) {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		return http.StatusUnsupportedMediaType, fmt.Errorf("Content-Type %q: send application/json", ct)
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	if err := decodeJSON(body, dst); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return http.StatusRequestEntityTooLarge, fmt.Errorf("request body over %d bytes", limit)
		}
		return http.StatusBadRequest, err
	}
	return 0, nil
}

func decodeJSON(rd io.Reader, dst any) error {
	rd, err := jsonObject(rd)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(rd)
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("empty body: send a JSON object")
		}
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return err
		}
		return fmt.Errorf("invalid JSON body: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return err
		}
		return errors.New("invalid JSON body: data after the JSON object")
	}
	return nil
}

// readBody decodes a route's body, answering the error itself; false
// means the answer is written.
func (a *API) readBody(w http.ResponseWriter, r *http.Request, dst any) bool {
	status, err := decodeStrict(w, r, a.o.MaxBodyBytes, dst)
	if err != nil {
		code := "invalid_request"
		if status == http.StatusRequestEntityTooLarge {
			code = "body_too_large"
		} else if status == http.StatusUnsupportedMediaType {
			code = "unsupported_media_type"
		}
		fail(w, r, status, code, err.Error())
		return false
	}
	return true
}

// PassiveMessage is the old service's text of its PASSIVE 503, which the
// app shows to the user.
const PassiveMessage = "PASSIVE mode: another instance holds lock; retry shortly"
