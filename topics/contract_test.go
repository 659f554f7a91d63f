package topics

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamscore/streamscore/internal/testenv"
	"github.com/streamscore/streamscore/pipeline"
	"github.com/streamscore/streamscore/pipeline/pipelinetest"
	"github.com/streamscore/streamscore/pipeline/record"
)

// The pipeline contract suite (package pipelinetest) on every source and sink of this
// package: on the embedded broker in the fast tier, and on Apache Kafka in the integration
// tier (-tags integration, brokers from testenv). Every test gets its own topics, group
// and transactional id.

const contractPartitions = 3

// eachBroker runs fn as a subtest on a fresh embedded broker (fast tier) or on Apache
// Kafka (integration tier).
func eachBroker(t *testing.T, fn func(t *testing.T, cc ClientConfig)) {
	if testenv.Integration {
		t.Run("apache-kafka", func(t *testing.T) {
			fn(t, ClientConfig{Brokers: testenv.Brokers(t)})
		})
		return
	}
	t.Run("embedded", func(t *testing.T) {
		fake, err := NewEmbeddedBroker(contractPartitions)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(fake.Close)
		fn(t, ClientConfig{Brokers: fake.Addrs()})
	})
}

// randomName is a topic, group or transactional id that no other test uses.
func randomName(t testing.TB, kind string) string {
	t.Helper()
	return testenv.Name(t, "contract-"+kind)
}

func newTopic(t *testing.T, cc ClientConfig) string {
	t.Helper()
	topic := randomName(t, "topic")
	ctx, cancel := context.WithTimeout(context.Background(), pipelinetest.Timeout)
	defer cancel()
	adm, err := NewAdmin(cc)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	if err := adm.EnsureTopics(ctx, -1, TopicSpec{Name: topic, Partitions: contractPartitions}); err != nil {
		t.Fatal(err)
	}
	return topic
}

// writer writes records as given (partition, key, value, headers, timestamp) with a plain
// franz-go producer, independent of the sources under test.
func writer(t *testing.T, cc ClientConfig) func(context.Context, []record.Record) ([]int64, error) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(cc.Brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return func(ctx context.Context, recs []record.Record) ([]int64, error) {
		krs := make([]*kgo.Record, len(recs))
		for i, r := range recs {
			kr := &kgo.Record{Topic: r.Topic, Partition: r.Partition, Key: r.Key, Value: r.Value, Timestamp: r.Timestamp}
			for _, h := range r.Headers {
				kr.Headers = append(kr.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
			}
			krs[i] = kr
		}
		res := cl.ProduceSync(ctx, krs...)
		if err := res.FirstErr(); err != nil {
			return nil, err
		}
		// The results come in completion order; the records themselves carry their offsets.
		offsets := make([]int64, len(krs))
		for i, kr := range krs {
			offsets[i] = kr.Offset
		}
		return offsets, nil
	}
}

func sourceSetup(t *testing.T, cc ClientConfig, open func(t *testing.T, topic string) pipeline.Source) pipelinetest.SourceSetup {
	t.Helper()
	topic := newTopic(t, cc)
	return pipelinetest.SourceSetup{
		Topic: topic, Partitions: contractPartitions, Write: writer(t, cc),
		Open: func(t *testing.T) pipeline.Source { return open(t, topic) },
	}
}

func TestReplayContract(t *testing.T) {
	eachBroker(t, func(t *testing.T, cc ClientConfig) {
		pipelinetest.TestSource(t, pipelinetest.SourceFeatures{Bounded: true}, func(t *testing.T) pipelinetest.SourceSetup {
			return sourceSetup(t, cc, func(t *testing.T, topic string) pipeline.Source {
				ctx, cancel := context.WithTimeout(context.Background(), pipelinetest.Timeout)
				defer cancel()
				// Small polls, so that the records take several fetches.
				r, err := NewReplay(ctx, cc, ReplayOptions{Topics: []string{topic}, MaxPollRecords: 7})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(r.Close)
				return r
			})
		})
	})
}

func TestReaderContract(t *testing.T) {
	eachBroker(t, func(t *testing.T, cc ClientConfig) {
		pipelinetest.TestSource(t, pipelinetest.SourceFeatures{}, func(t *testing.T) pipelinetest.SourceSetup {
			return sourceSetup(t, cc, func(t *testing.T, topic string) pipeline.Source {
				r, err := NewReader(cc, true, topic)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(r.Close)
				return r
			})
		})
	})
}

func TestGroupSourceContract(t *testing.T) {
	eachBroker(t, func(t *testing.T, cc ClientConfig) {
		pipelinetest.TestSource(t, pipelinetest.SourceFeatures{}, func(t *testing.T) pipelinetest.SourceSetup {
			return sourceSetup(t, cc, func(t *testing.T, topic string) pipeline.Source {
				s, err := NewGroupSource(cc, GroupOptions{Group: randomName(t, "group"), Topics: []string{topic}, MaxPollRecords: 50})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(s.Close)
				return s
			})
		})
	})
}

func newTransactSession(t *testing.T, cc ClientConfig, topic string) *TransactSession {
	t.Helper()
	s, err := NewTransactSession(cc, TransactOptions{
		GroupOptions:    GroupOptions{Group: randomName(t, "group"), Topics: []string{topic}, MaxPollRecords: 50},
		TransactionalID: randomName(t, "txn"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func TestTransactSessionSourceContract(t *testing.T) {
	eachBroker(t, func(t *testing.T, cc ClientConfig) {
		pipelinetest.TestSource(t, pipelinetest.SourceFeatures{}, func(t *testing.T) pipelinetest.SourceSetup {
			return sourceSetup(t, cc, func(t *testing.T, topic string) pipeline.Source {
				return newTransactSession(t, cc, topic)
			})
		})
	})
}

// readBack reads everything committed to topic so far, with a Replay (itself under the
// source contract above).
func readBack(cc ClientConfig, topic string) func(context.Context) ([]record.Record, error) {
	return func(ctx context.Context) ([]record.Record, error) {
		r, err := NewReplay(ctx, cc, ReplayOptions{Topics: []string{topic}})
		if err != nil {
			return nil, err
		}
		defer r.Close()
		var all []record.Record
		for {
			recs, err := r.Fetch(ctx)
			all = append(all, recs...)
			if errors.Is(err, io.EOF) {
				return all, nil
			}
			if err != nil {
				return all, err
			}
		}
	}
}

func TestProducerContract(t *testing.T) {
	eachBroker(t, func(t *testing.T, cc ClientConfig) {
		pipelinetest.TestSink(t, pipelinetest.SinkFeatures{}, func(t *testing.T) pipelinetest.SinkSetup {
			topic := newTopic(t, cc)
			p, err := NewProducer(cc, ProducerOptions{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(p.Close)
			return pipelinetest.SinkSetup{
				Topic: topic, Partitions: contractPartitions, Sink: p, ReadBack: readBack(cc, topic),
				Failing: func(t *testing.T) pipeline.Sink {
					closed, err := NewProducer(cc, ProducerOptions{})
					if err != nil {
						t.Fatal(err)
					}
					closed.Close()
					return closed
				},
			}
		})
	})
}

// As a sink, a TransactSession writes inside the transaction that its Fetch began, and its
// outputs become visible when EndBatch commits it.
func TestTransactSessionSinkContract(t *testing.T) {
	eachBroker(t, func(t *testing.T, cc ClientConfig) {
		pipelinetest.TestSink(t, pipelinetest.SinkFeatures{}, func(t *testing.T) pipelinetest.SinkSetup {
			input, output := newTopic(t, cc), newTopic(t, cc)
			ctx, cancel := context.WithTimeout(context.Background(), pipelinetest.Timeout)
			defer cancel()
			if _, err := writer(t, cc)(ctx, []record.Record{{Topic: input, Value: []byte("in")}}); err != nil {
				t.Fatal(err)
			}
			s := newTransactSession(t, cc, input)
			if recs, err := s.Fetch(ctx); err != nil || len(recs) != 1 {
				t.Fatalf("fetching the input that begins the transaction: %d records, %v", len(recs), err)
			}
			return pipelinetest.SinkSetup{
				Topic: output, Partitions: contractPartitions, Sink: s, ReadBack: readBack(cc, output),
				Commit: func(ctx context.Context) error {
					committed, err := s.EndBatch(ctx)
					if err == nil && !committed {
						err = errors.New("EndBatch aborted the transaction though the group did not rebalance")
					}
					return err
				},
				// No Fetch, so no transaction: every Produce must fail.
				Failing: func(t *testing.T) pipeline.Sink { return newTransactSession(t, cc, input) },
			}
		})
	})
}
