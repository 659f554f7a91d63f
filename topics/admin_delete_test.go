package topics

import (
	"context"
	"testing"
	"time"
)

// DeleteTopics deletes what it names, leaves the rest, and takes a topic that does not
// exist (deleted already, or never made) as done.
func TestAdminDeleteTopics(t *testing.T) {
	fake, err := NewEmbeddedBroker(1)
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm, err := NewAdmin(ClientConfig{Brokers: fake.Addrs()})
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	if err := adm.EnsureTopics(ctx, -1, TopicSpec{Name: "gone", Partitions: 2}, TopicSpec{Name: "kept", Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	if err := adm.DeleteTopics(ctx, "gone", "never-made"); err != nil {
		t.Fatalf("DeleteTopics: %v", err)
	}
	// ListTopics, not Partitions: on the embedded broker, a metadata request naming the
	// topic just after its deletion still answered with it.
	listed, err := adm.adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if listed.Has("gone") || !listed.Has("kept") {
		t.Fatalf("topics after deleting \"gone\": %v; want \"kept\" only", listed.Names())
	}
	if err := adm.DeleteTopics(ctx, "gone"); err != nil {
		t.Fatalf("deleting a deleted topic again: %v", err)
	}
}
