//go:build !integration

package drivers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/pipeline"
	"github.com/streamscore/streamscore/pipeline/record"
	"github.com/streamscore/streamscore/topics"
)

// memCluster is an in-memory input log with committed offsets and an output store: what
// survives a restart of the operator, as a Kafka cluster would. Its sinks fail the
// writes they are told to.
type memCluster struct {
	mu        sync.Mutex
	topic     string
	log       map[int32][]pipeline.Record
	committed map[int32]int64
	outputs   []pipeline.Output
	// produced counts every Produce; fail decides, from that count, whether a write fails.
	produced int
	fail     func(n int) error
}

func newMemCluster(topic string, partitions int32, perPartition int) *memCluster {
	c := &memCluster{topic: topic, log: map[int32][]pipeline.Record{}, committed: map[int32]int64{}, fail: func(int) error { return nil }}
	id := 0
	for p := range partitions {
		for off := range perPartition {
			id++
			v := fmt.Sprintf(`{"transaction_id":%d,"tx_datetime":"2018-04-01T00:%02d:%02dZ","customer_id":%d,"terminal_id":3156,"tx_amount":%d.5}`,
				id, off/60%60, off%60, 500+id%7, id%300)
			c.log[p] = append(c.log[p], pipeline.Record{Topic: topic, Partition: p, Offset: int64(off), Key: fmt.Appendf(nil, "%d", 500+id%7), Value: []byte(v), Timestamp: time.Unix(0, 0)})
		}
	}
	return c
}

// open returns a source that starts at the committed offsets, and a sink.
func (c *memCluster) open() (*memSource, *memSink) {
	c.mu.Lock()
	defer c.mu.Unlock()
	pos := map[int32]int64{}
	for p := range c.log {
		pos[p] = c.committed[p]
	}
	return &memSource{c: c, pos: pos}, &memSink{c: c}
}

// missing lists the input offsets with no prediction yet.
func (c *memCluster) missing(predictions string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	seen := map[pipeline.TopicPartition]map[int64]bool{}
	for _, o := range c.outputs {
		if o.Topic != predictions || o.Source == nil {
			continue
		}
		tp := pipeline.TopicPartition{Topic: o.Source.Topic, Partition: o.Source.Partition}
		if seen[tp] == nil {
			seen[tp] = map[int64]bool{}
		}
		seen[tp][o.Source.Offset] = true
	}
	var out []string
	for p, recs := range c.log {
		for _, r := range recs {
			if !seen[pipeline.TopicPartition{Topic: c.topic, Partition: p}][r.Offset] {
				out = append(out, fmt.Sprintf("%d@%d", p, r.Offset))
			}
		}
	}
	return out
}

// memSource reads the log from where it was opened; it implements pipeline.Source and
// pipeline.Committer.
type memSource struct {
	c   *memCluster
	pos map[int32]int64
}

func (s *memSource) Fetch(ctx context.Context) ([]pipeline.Record, error) {
	s.c.mu.Lock()
	var recs []pipeline.Record
	for p, log := range s.c.log {
		end := min(s.pos[p]+25, int64(len(log)))
		recs = append(recs, log[s.pos[p]:end]...)
		s.pos[p] = end
	}
	s.c.mu.Unlock()
	if len(recs) > 0 {
		return recs, nil
	}
	<-ctx.Done() // the end of the log: wait for more, as a consumer does
	return nil, ctx.Err()
}

func (s *memSource) Commit(_ context.Context, offsets []pipeline.Offset) error {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	for _, o := range offsets {
		s.c.committed[o.Partition] = max(s.c.committed[o.Partition], o.Offset)
	}
	return nil
}

// memSink acknowledges every write at once, failing those the cluster says to.
type memSink struct{ c *memCluster }

func (s *memSink) Produce(out *pipeline.Output, ack func(error)) {
	s.c.mu.Lock()
	s.c.produced++
	err := s.c.fail(s.c.produced)
	if err == nil {
		o := *out
		if out.Source != nil {
			src := *out.Source
			o.Source = &src
		}
		s.c.outputs = append(s.c.outputs, o)
	}
	s.c.mu.Unlock()
	ack(err)
}

func (s *memSink) Flush(context.Context) error { return nil }

// constModel scores every row 0.25.
type constModel struct{ n int }

func (m constModel) Score(_ []float32, n int, out []float32, _ []float32) ([]float32, error) {
	out = out[:0]
	for range n {
		out = append(out, 0.25)
	}
	return out, nil
}
func (m constModel) NumFeatures() int { return m.n }
func (constModel) Name() string       { return "fraud" }
func (constModel) Version() string    { return "const" }

// supervised is a supervisor over operators on a memCluster, as Live wires them.
type supervised struct {
	sup  supervisor
	reg  *prometheus.Registry
	c    *config.Compiled
	open func(context.Context) (runner, error)
}

func newSupervised(t *testing.T, cl *memCluster, failover time.Duration) *supervised {
	t.Helper()
	c := testConfig(t, []string{"127.0.0.1:1"})
	c.Topics.Input = []string{cl.topic}
	c.Features = c.Features[:3] // stateless: no window history or labels to read
	c.Feedback = pipeline.FeedbackConfig{}
	c.Drift.Enabled = false
	c.Registry.Enabled = false
	cc, err := c.Validate(config.Needs{})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	stats := &pipeline.Stats{}
	restarts, err := newRestartsCounter(reg)
	if err != nil {
		t.Fatal(err)
	}
	oc := cc.Operator(constModel{n: cc.Features.Len()})
	oc.Metrics, oc.Stats, oc.Logger = pipeline.NewMetrics(reg), stats, log
	oc.CommitInterval = 10 * time.Millisecond
	s := &supervised{reg: reg, c: cc}
	s.sup = supervisor{
		failover: failover, log: log, restarts: restarts, now: time.Now,
		backoff:  func(int) time.Duration { return time.Millisecond },
		progress: func() int64 { return stats.Done.Load() },
	}
	s.open = func(context.Context) (runner, error) {
		src, sink := cl.open()
		op, err := pipeline.New(oc, src, sink)
		if err != nil {
			return nil, err
		}
		return &attempt{op: op, src: src}, nil
	}
	return s
}

// start runs the supervisor until ctx ends or it gives up; the channel gets its error.
func (s *supervised) start(ctx context.Context, t *testing.T) <-chan error {
	t.Helper()
	first, err := s.open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.sup.run(ctx, first, s.open) }()
	return done
}

// await returns the supervisor's error, failing the test if it is still running after a
// minute (a hang guard, far above the milliseconds these runs take).
func await(t *testing.T, done <-chan error, what string) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(time.Minute):
		t.Fatalf("the supervisor still runs a minute after %s", what)
		return nil
	}
}

// TestSupervisorRestartsAfterATransientWriteFailure: a write refused by a broker that is
// down stops the operator; the supervisor reopens and restarts it from the committed
// offsets, and every input gets its prediction.
func TestSupervisorRestartsAfterATransientWriteFailure(t *testing.T) {
	cl := newMemCluster("tx", 3, 400)
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	cl.fail = func(n int) error {
		if n == 300 || n == 301 || n == 900 {
			return refused
		}
		return nil
	}
	s := newSupervised(t, cl, time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := s.start(ctx, t)
	deadline := time.Now().Add(time.Minute)
	for missing := cl.missing(s.c.Topics.Predictions); len(missing) > 0; missing = cl.missing(s.c.Topics.Predictions) {
		select {
		case err := <-done:
			t.Fatalf("the supervisor returned with %d inputs unscored: %v", len(missing), err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d inputs have no prediction, e.g. %v", len(missing), missing[:min(5, len(missing))])
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not a barrier
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("stopping: %v", err)
	}
	if n := testutil.ToFloat64(s.sup.restarts.WithLabelValues("connection")); n < 1 {
		t.Fatalf("streamscore_operator_restarts_total{cause=connection} = %v after refused writes", n)
	}
}

// TestSupervisorExitsOnAPermanentFailure: a write that waiting cannot cure ends the job at
// once, with the error's advice, and no restart.
func TestSupervisorExitsOnAPermanentFailure(t *testing.T) {
	cl := newMemCluster("tx", 2, 200)
	const fix = "create it, or set topics.create: true"
	cl.fail = func(n int) error {
		if n == 50 {
			return fmt.Errorf("%w (%s)", topics.ErrNoTopic, fix)
		}
		return nil
	}
	s := newSupervised(t, cl, time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err := await(t, s.start(ctx, t), "a permanent write failure")
	if err == nil || !strings.Contains(err.Error(), fix) || !errors.Is(err, topics.ErrNoTopic) {
		t.Fatalf("a permanent write failure: %v; want its advice %q", err, fix)
	}
	if n := testutil.CollectAndCount(s.sup.restarts); n != 0 {
		t.Fatalf("%d restart causes counted after a permanent failure", n)
	}
}

// TestSupervisorGivesUpAfterTheFailoverTimeout: when no write succeeds, restarts stop
// once kafka.failover_timeout has passed without progress, and the error names the
// setting and the cause.
func TestSupervisorGivesUpAfterTheFailoverTimeout(t *testing.T) {
	cl := newMemCluster("tx", 2, 50)
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	cl.fail = func(int) error { return refused }
	s := newSupervised(t, cl, 200*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err := await(t, s.start(ctx, t), "every write failed")
	if err == nil || !strings.Contains(err.Error(), "gave up after 200ms without progress (kafka.failover_timeout)") || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("giving up: %v", err)
	}
	if n := testutil.ToFloat64(s.sup.restarts.WithLabelValues("connection")); n < 1 {
		t.Fatalf("gave up without restarting (%v restarts)", n)
	}
}

// failedRunner is an operator that stopped on err at once.
type failedRunner struct{ err error }

func (f failedRunner) Run(context.Context) error { return f.err }
func (failedRunner) Close()                      {}

// TestLiveReopensItsClients: after a transient failure a live job opens new Kafka clients
// on the same metrics registry (no collector registered twice, the client metrics kept)
// and scores the backlog with them.
func TestLiveReopensItsClients(t *testing.T) {
	c := testConfig(t, embeddedBroker(t))
	createInputTopics(t, c, 3)
	const events = 1000
	produceT(t, c, events, 0, 5)
	cc, err := c.Validate(config.Needs{Kafka: true, Model: true})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	stats := &pipeline.Stats{}
	l, err := NewLive(t.Context(), cc, LiveDeps{Registry: reg, Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)), Stats: stats})
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	l.cur.Load().Close() // the first operator's clients, as after its failure
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	go func() { done <- l.sup.run(ctx, failedRunner{refused}, l.reopen) }()
	deadline := time.Now().Add(2 * time.Minute)
	for stats.Done.Load() < events {
		select {
		case err := <-done:
			t.Fatalf("the live job stopped after %d of %d events: %v", stats.Done.Load(), events, err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events scored after the restart", stats.Done.Load(), events)
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not a barrier
	}
	families, err := reg.Gather() // while it scores: closing a client unregisters its metrics
	if err != nil {
		t.Fatalf("gathering metrics after the restart: %v", err)
	}
	var consumer, lag bool
	for _, f := range families {
		consumer = consumer || strings.HasPrefix(f.GetName(), "streamscore_kafka_consumer_")
		lag = lag || f.GetName() == "streamscore_consumer_lag"
	}
	if !consumer || !lag {
		t.Fatalf("after the restart: consumer client metrics %t, lag gauge %t; want both", consumer, lag)
	}
	cancel()
	if err := await(t, done, "its context ended"); err != nil {
		t.Fatalf("stopping: %v", err)
	}
	if n := testutil.ToFloat64(l.sup.restarts.WithLabelValues("connection")); n != 1 {
		t.Fatalf("streamscore_operator_restarts_total{cause=connection} = %v, want 1", n)
	}
}

// TestTransientFollowsTheWriteClass: a failed write's own class decides (topics classified
// it where the Kafka error is known); other errors are transient unless topics knows them
// to be permanent, and a cancellation is never restarted.
func TestTransientFollowsTheWriteClass(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"fenced producer", fmt.Errorf("writing to p for t/0@1: %w", &record.WriteError{Topic: "p", Transient: true, Err: errors.New("PRODUCER_FENCED")}), true},
		{"record too large", fmt.Errorf("writing to p for t/0@1: %w", &record.WriteError{Topic: "p", Fix: "raise max.message.bytes", Err: errors.New("MESSAGE_TOO_LARGE")}), false},
		{"refused connection", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, true},
		{"missing topic", fmt.Errorf("reading: %w", topics.ErrNoTopic), false},
		{"canceled", fmt.Errorf("fetching: %w", context.Canceled), false},
	} {
		if got := transient(tc.err); got != tc.want {
			t.Errorf("%s: transient = %v, want %v", tc.name, got, tc.want)
		}
	}
}
