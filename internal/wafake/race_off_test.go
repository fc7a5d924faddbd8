//go:build !race

package wafake_test

const raceEnabled = false
