package daemon

import (
	"fmt"

	"go.mau.fi/whatsmeow/store"
)

// ApplyWAVersion makes every client announce WhatsApp Web version v instead
// of the one built into whatsmeow. WhatsApp answers 405 (client outdated)
// when the built-in version ages; both the version and the payload's app
// version must change. Call it before any client connects. Empty v keeps
// the built-in version.
func ApplyWAVersion(v string) error {
	if v == "" {
		return nil
	}
	parsed, err := store.ParseVersion(v)
	if err != nil {
		return fmt.Errorf("whatsapp.version_override: %w", err)
	}
	store.SetWAVersion(parsed)
	store.BaseClientPayload.UserAgent.AppVersion = parsed.ProtoAppVersion()
	return nil
}
