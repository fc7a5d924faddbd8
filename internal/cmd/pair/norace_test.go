//go:build !race

package pair_test

const raceEnabled = false
