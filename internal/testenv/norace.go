//go:build !race

package testenv

// Race is false in a test binary built without -race (see race.go).
const Race = false
