// Package pairtest reads QR codes back off a terminal, for tests of the
// pairing UI (unit tests of the renderer and tmux screen captures).
package pairtest

import (
	"errors"
	"fmt"
	"strings"
)

// ParseHalfBlocks turns the half-block QR drawing found in screen back into
// modules: m[y][x] is true for a dark module. Lines that are not part of the
// drawing (text around it) are skipped; trailing blanks trimmed by a screen
// capture are restored. invert must match the renderer's setting. The quiet
// zone is cropped away using the finder patterns' dark corners.
func ParseHalfBlocks(screen string, invert bool) ([][]bool, error) {
	var rows [][]bool
	width := 0
	for _, line := range strings.Split(screen, "\n") {
		if !isDrawingLine(line) {
			if len(rows) > 0 {
				break // the drawing is one contiguous block of lines
			}
			continue
		}
		var upper, lower []bool
		for _, r := range line {
			u, l := cell(r, invert)
			upper, lower = append(upper, u), append(lower, l)
		}
		width = max(width, len(upper))
		rows = append(rows, upper, lower)
	}
	if len(rows) == 0 {
		return nil, errors.New("no half-block drawing found")
	}
	// Find the bounding box of dark pixels.
	minX, minY, maxX, maxY := width, len(rows), -1, -1
	for y, row := range rows {
		for x, dark := range row {
			if dark {
				minX, maxX = min(minX, x), max(maxX, x)
				minY, maxY = min(minY, y), max(maxY, y)
			}
		}
	}
	if maxX < 0 {
		return nil, errors.New("drawing has no dark module")
	}
	w, h := maxX-minX+1, maxY-minY+1
	if w != h {
		return nil, fmt.Errorf("dark area is %dx%d, not square: not a QR code or the drawing is clipped", w, h)
	}
	out := make([][]bool, h)
	for y := range out {
		out[y] = make([]bool, w)
		row := rows[minY+y]
		for x := range out[y] {
			if minX+x < len(row) {
				out[y][x] = row[minX+x]
			}
		}
	}
	return out, nil
}

func isDrawingLine(line string) bool {
	hasBlock := false
	for _, r := range line {
		switch r {
		case '█', '▀', '▄':
			hasBlock = true
		case ' ':
		default:
			return false
		}
	}
	return hasBlock
}

// cell gives the (upper, lower) darkness of one character cell. Without
// invert, light modules are drawn in the foreground colour.
func cell(r rune, invert bool) (upperDark, lowerDark bool) {
	var upperFG, lowerFG bool
	switch r {
	case '█':
		upperFG, lowerFG = true, true
	case '▀':
		upperFG = true
	case '▄':
		lowerFG = true
	}
	if invert {
		return upperFG, lowerFG
	}
	return !upperFG, !lowerFG
}
