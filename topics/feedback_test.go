package topics

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamscore/streamscore/internal/testenv"
)

// CaughtUp says, per partition of the feedback topic, whether Poll has returned everything
// the broker holds: before any poll only the empty partition is; after reading everything,
// all are; a record written afterwards makes its partition behind again. On the embedded
// broker in the fast tier, and on Apache Kafka in the integration tier.
func TestFeedbackCaughtUp(t *testing.T) {
	brokers := map[string][]string{}
	if testenv.Integration {
		brokers["apache-kafka"] = testenv.Brokers(t)
	} else {
		fake, err := NewEmbeddedBroker(1)
		if err != nil {
			t.Fatal(err)
		}
		defer fake.Close()
		brokers["embedded"] = fake.Addrs()
	}
	for name, addrs := range brokers {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cc := ClientConfig{Brokers: addrs}
			topic := testenv.Name(t, "labels-caughtup")
			adm, err := NewAdmin(cc)
			if err != nil {
				t.Fatal(err)
			}
			defer adm.Close()
			if err := adm.EnsureTopics(ctx, -1, TopicSpec{Name: topic, Partitions: 3}); err != nil {
				t.Fatal(err)
			}
			prod, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
			if err != nil {
				t.Fatal(err)
			}
			defer prod.Close()
			write := func(partition int32, n int) {
				for i := range n {
					r := &kgo.Record{Topic: topic, Partition: partition, Value: fmt.Appendf(nil, "%d", i)}
					if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
						t.Fatal(err)
					}
				}
			}
			write(0, 5)
			write(2, 2)

			f, err := NewFeedback(ctx, cc, FeedbackOptions{Topic: topic})
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			check := func(want map[int32]bool) {
				t.Helper()
				got, err := f.CaughtUp(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("CaughtUp = %v, want %v", got, want)
				}
			}
			check(map[int32]bool{0: false, 1: true, 2: false})
			for read := 0; read < 7; {
				poll, err := f.Poll(ctx)
				if err != nil {
					t.Fatal(err)
				}
				read += len(poll.Records)
			}
			check(map[int32]bool{0: true, 1: true, 2: true})
			write(1, 1)
			check(map[int32]bool{0: true, 1: false, 2: true})
		})
	}
}
