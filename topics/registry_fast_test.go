//go:build !integration

package topics

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestRegistryRefusesMultiPartitionTopic: activations on two partitions have no order.
func TestRegistryRefusesMultiPartitionTopic(t *testing.T) {
	fake, err := NewEmbeddedBroker(2, "models-2")
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	reg, err := OpenRegistry(ctx, ClientConfig{Brokers: fake.Addrs()}, RegistryOptions{Topic: "models-2"})
	if err == nil {
		reg.Close()
		t.Fatal("opened a registry on a topic of 2 partitions")
	}
	if !strings.Contains(err.Error(), "exactly one") {
		t.Fatalf("message %q does not say what to do", err)
	}
}
