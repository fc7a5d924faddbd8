package pair

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/mdp/qrterminal/v3"
	"rsc.io/qr"
)

// MinQuietZone is the smallest margin, in modules, that phone cameras read
// reliably; the QR standard asks for 4.
const MinQuietZone = 2

// QROptions configures RenderQR.
type QROptions struct {
	// QuietZone is the blank margin in modules; below MinQuietZone it is
	// raised to MinQuietZone.
	QuietZone int
	// Invert draws dark modules with the terminal's foreground colour, for
	// light-background terminals. The default suits dark backgrounds.
	Invert bool
	// TermWidth is the terminal's width in columns; 0 skips the check.
	TermWidth int
	// TermHeight is the number of rows the code may take; 0 skips the
	// check. A code taller than the screen scrolls its top away and cannot
	// be scanned, so it is refused like a too wide one.
	TermHeight int
}

// TooWideError says that the QR code does not fit the terminal: too wide
// (Need > Have) or too tall (NeedRows > HaveRows).
type TooWideError struct {
	Need, Have         int // columns
	NeedRows, HaveRows int // rows; HaveRows 0 when the height was not checked
}

func (e *TooWideError) Error() string {
	size := fmt.Sprintf("%d columns", e.Need)
	have := fmt.Sprintf("%d", e.Have)
	if e.HaveRows > 0 {
		size = fmt.Sprintf("%d columns × %d rows", e.Need, e.NeedRows)
		have = fmt.Sprintf("%d × %d", e.Have, e.HaveRows)
	}
	return fmt.Sprintf("the QR code needs %s but the terminal has %s, so it is not drawn (a cut-off code cannot be scanned): enlarge the window or make the font smaller, or use --code (a code typed on the phone) or --qr-png FILE (an image to open and scan)",
		size, have)
}

// qrLevel is the error correction level of rendered codes: the lowest, which
// gives the smallest code, as whatsmeow's examples use.
const qrLevel = qr.L

// QRWidth is the number of terminal columns RenderQR uses for code.
func QRWidth(code string, quietZone int) (int, error) {
	cols, _, err := QRSize(code, quietZone)
	return cols, err
}

// QRSize is the number of terminal columns and rows RenderQR uses for code:
// one column per module, two modules per row (half blocks).
func QRSize(code string, quietZone int) (cols, rows int, err error) {
	c, err := qr.Encode(code, qrLevel)
	if err != nil {
		return 0, 0, fmt.Errorf("encode QR: %w", err)
	}
	n := c.Size + 2*max(quietZone, MinQuietZone)
	return n, (n + 1) / 2, nil
}

// RenderQR draws code with half blocks (two modules per character cell, so
// the code is about square) to w. It refuses, drawing nothing, when the code
// is wider than opts.TermWidth or taller than opts.TermHeight. Terminal
// features are never probed.
func RenderQR(w io.Writer, code string, opts QROptions) error {
	if code == "" {
		return errors.New("empty QR code")
	}
	qz := max(opts.QuietZone, MinQuietZone)
	width, rows, err := QRSize(code, qz)
	if err != nil {
		return err
	}
	if (opts.TermWidth > 0 && width > opts.TermWidth) || (opts.TermHeight > 0 && rows > opts.TermHeight) {
		return &TooWideError{Need: width, Have: opts.TermWidth, NeedRows: rows, HaveRows: opts.TermHeight}
	}
	cfg := qrterminal.Config{
		Level:      qrLevel,
		Writer:     w,
		HalfBlocks: true,
		QuietZone:  qz,
		// Default (dark background): light modules are drawn as blocks in the
		// (light) foreground colour and dark modules are left as background.
		BlackChar:      " ",
		WhiteChar:      "█",
		BlackWhiteChar: "▄", // upper module dark, lower light
		WhiteBlackChar: "▀", // upper module light, lower dark
	}
	if opts.Invert {
		cfg.BlackChar, cfg.WhiteChar = "█", " "
		cfg.BlackWhiteChar, cfg.WhiteBlackChar = "▀", "▄"
	}
	var buf bytes.Buffer
	cfg.Writer = &buf
	qrterminal.GenerateWithConfig(code, cfg)
	lines := strings.SplitAfter(buf.String(), "\n")
	// qrterminal pads an odd number of margin rows with a half line in the
	// "dark" colour (first line for an odd quiet zone, last line for an even
	// one). Inverted, that is a visible dark bar next to the code; make the
	// padding light instead, which only widens the margin by one row.
	blank := strings.Repeat(cfg.WhiteChar, width) + "\n"
	for _, i := range []int{0, len(lines) - 2} { // the last element is ""
		if i >= 0 && (isRepeat(lines[i], cfg.BlackWhiteChar) || isRepeat(lines[i], cfg.WhiteBlackChar)) {
			lines[i] = blank
		}
	}
	_, err = io.WriteString(w, strings.Join(lines, ""))
	return err
}

func isRepeat(line, char string) bool {
	line = strings.TrimSuffix(line, "\n")
	return line != "" && strings.Trim(line, char) == ""
}
