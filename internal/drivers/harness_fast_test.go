//go:build !integration

package drivers

import (
	"testing"

	"github.com/streamscore/streamscore/topics"
)

// embeddedBroker starts the in-process kfake broker for fast tests.
func embeddedBroker(t *testing.T) []string {
	t.Helper()
	b, err := topics.NewEmbeddedBroker(3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b.Addrs()
}
