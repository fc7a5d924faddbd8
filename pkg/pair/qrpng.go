package pair

import (
	"fmt"
	"os"
	"path/filepath"

	qrcode "github.com/skip2/go-qrcode"
)

// WriteQRPNG writes code as a PNG image to path, readable only by its
// owner (a pairing code links a device to the account), replacing the file
// atomically so that an image viewer never shows half a code.
func WriteQRPNG(path, code string) error {
	// Medium error correction: an image has room, and a photo of a screen
	// reads better with it. A negative size is pixels per module: whole
	// pixels keep every module the same size, which scaling to a fixed
	// image size does not.
	png, err := qrcode.Encode(code, qrcode.Medium, -8)
	if err != nil {
		return fmt.Errorf("encode QR image: %w", err)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".wactl-qr-*.png")
	if err != nil {
		return fmt.Errorf("--qr-png %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("--qr-png %s: %w", path, err)
	}
	if _, err := tmp.Write(png); err != nil {
		tmp.Close()
		return fmt.Errorf("--qr-png %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("--qr-png %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("--qr-png %s: %w", path, err)
	}
	return nil
}
