//go:build integration

package testenv

// Integration is true in the integration tier (built with -tags integration).
const Integration = true
