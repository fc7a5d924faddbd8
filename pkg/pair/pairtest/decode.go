package pairtest

import (
	"errors"
	"image"
	"image/color"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
)

// Decode reads the text of a QR code from its modules (as ParseHalfBlocks
// returns them), with an independent decoder: a test that draws a code and
// reads it back this way proves the drawing is scannable, not merely that
// the renderer agrees with itself.
func Decode(modules [][]bool) (string, error) {
	n := len(modules)
	if n == 0 {
		return "", errors.New("no modules")
	}
	const scale, quiet = 4, 4
	size := (n + 2*quiet) * scale
	img := image.NewGray(image.Rect(0, 0, size, size))
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			img.SetGray(x, y, color.Gray{Y: 255})
		}
	}
	for y, row := range modules {
		for x, dark := range row {
			if !dark {
				continue
			}
			for dy := 0; dy < scale; dy++ {
				for dx := 0; dx < scale; dx++ {
					img.SetGray((x+quiet)*scale+dx, (y+quiet)*scale+dy, color.Gray{Y: 0})
				}
			}
		}
	}
	return decodeImage(img, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_PURE_BARCODE: true})
}

// DecodeImage reads the text of a QR code in an image that holds only the
// code and its margin (a PNG written for the operator). The pure-barcode
// mode reads such an image every time; gozxing's camera-style finder
// misses about 2 % of valid codes, which would make tests flaky.
func DecodeImage(img image.Image) (string, error) {
	return decodeImage(img, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_PURE_BARCODE: true})
}

func decodeImage(img image.Image, hints map[gozxing.DecodeHintType]any) (string, error) {
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		return "", err
	}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, hints)
	if err != nil {
		return "", err
	}
	return res.GetText(), nil
}
