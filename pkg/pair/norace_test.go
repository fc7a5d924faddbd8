//go:build !race

package pair

const raceEnabled = false
