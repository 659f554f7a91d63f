//go:build !integration

package testenv

// Integration is false in the fast tier (built without -tags integration).
const Integration = false
