//go:build race

package testenv

// Race is true in a test binary built with -race (the fast tier). The race detector makes
// every memory access several times as costly: a test whose property does not depend on
// its size may check a smaller sample then, and the full one without -race. It sizes
// work, never skips a check.
const Race = true
