//go:build integration

package topics

import (
	"context"
	"testing"
	"time"

	"github.com/streamscore/streamscore/internal/testenv"
)

// TestRegistryCreatesCompactedTopic checks the topic's cleanup policy, on Apache Kafka
// only: it is what keeps every chunk and activation forever while bounding rewrites.
func TestRegistryCreatesCompactedTopic(t *testing.T) {
	addrs := testenv.Brokers(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	topic := testenv.Name(t, "streamscore.models.test")
	reg, err := OpenRegistry(ctx, ClientConfig{Brokers: addrs}, RegistryOptions{Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	defer func() {
		if _, err := reg.adm.DeleteTopic(ctx, topic); err != nil {
			t.Error(err)
		}
	}()
	rcs, err := reg.adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rc.Configs {
		if c.Key == "cleanup.policy" {
			if c.MaybeValue() != "compact" {
				t.Fatalf("cleanup.policy=%s, want compact", c.MaybeValue())
			}
			return
		}
	}
	t.Fatal("no cleanup.policy in the topic's configs")
}
