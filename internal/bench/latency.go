package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/internal/sim"
	"github.com/streamscore/streamscore/pipeline/record"
	"github.com/streamscore/streamscore/topics"
)

// Time limits of a latency probe.
const (
	subjectJoinTimeout = time.Minute // the pipeline child joining its group
	warmUpTimeout      = time.Minute // a prediction back from every partition
	warmUpDrain        = 200 * time.Millisecond
	readBackTimeout    = 2 * time.Minute // the last measured prediction read after the load
)

// latencySubject is what a latency probe offers load to: it starts consuming c's input
// topic and writing one record per event, naming the event's partition and offset, to c's
// predictions topic. It returns the process to read the peak RSS of (0: none of its own)
// and a stop function that returns once the subject has stopped.
type latencySubject func(ctx context.Context, c *config.Config) (pid int, stop func(), err error)

// pipelineSubject runs `streamscore run` in a child process and waits for it to join its
// group.
func pipelineSubject(ch child) latencySubject {
	return func(ctx context.Context, c *config.Config) (int, func(), error) {
		if err := createTopics(ctx, c, c.Topics.Labels, c.Topics.Predictions, c.Topics.Alerts, c.Topics.DeadLetter); err != nil {
			return 0, nil, err
		}
		cmd, stop, err := ch.startRun(c)
		if err != nil {
			return 0, nil, err
		}
		if err := waitForMember(ctx, c); err != nil {
			stop()
			return 0, nil, err
		}
		return cmd.Process.Pid, stop, nil
	}
}

// waitForMember polls c's group until it has one member with an assignment.
func waitForMember(ctx context.Context, c *config.Config) error {
	adm, err := topics.NewAdmin(c.Kafka)
	if err != nil {
		return err
	}
	defer adm.Close()
	for deadline := time.Now().Add(subjectJoinTimeout); ; {
		if m, err := adm.AssignedMembers(ctx, c.Group); err == nil && m == 1 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("latency: the pipeline did not join its group in %v", subjectJoinTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// relaySubject is the Kafka floor: topics.Relay in this process.
func relaySubject(ctx context.Context, c *config.Config) (int, func(), error) {
	if err := createTopics(ctx, c, c.Topics.Predictions); err != nil {
		return 0, nil, err
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- topics.Relay(rctx, c.Kafka, c.Topics.Input[0], c.Topics.Predictions) }()
	return 0, func() { cancel(); <-done }, nil //nolint:errcheck // after cancel the relay's error is the cancel's
}

// measureLatency starts subject, offers events at rate for d, and measures, for every
// event, the time from its produce call to the moment a subscriber reads its prediction.
// With labels, each event's label is written to the labels topic a simulated week after
// it, as in production, so events wait for the labels their features join
// (pipeline.Feedback); without, the labels topic stays empty and its partitions idle.
//
// The steps: start the subject and a reader of its output; (with labels) write a simulated
// week and a day of history; warm up until every partition has answered; offer the load;
// keep events coming, unmeasured, until the last measured prediction is read; then take
// the percentiles and the subject's peak RSS, and, when c serves /metrics, the stage times
// the subject observed meanwhile.
func measureLatency(ctx context.Context, subject latencySubject, c *config.Config, rate float64, d time.Duration, labels bool) (LatencyPoint, error) {
	lp := LatencyPoint{Offered: rate}
	pid, stop, err := subject(ctx, c)
	if err != nil {
		return lp, err
	}
	defer stop()
	reader, err := topics.NewReader(c.Kafka, topics.FromStart, c.Topics.Predictions)
	if err != nil {
		return lp, err
	}
	defer reader.Close()
	prod, err := topics.NewProducer(c.Kafka, topics.ProducerOptions{})
	if err != nil {
		return lp, err
	}
	defer prod.Close()

	pr := newProbe(c, prod, int(rate*d.Seconds()), labels)
	readCtx, stopRead := context.WithCancel(ctx)
	readDone, collected := make(chan error, 1), make(chan struct{})
	go func() {
		defer close(collected)
		readDone <- pr.collect(readCtx, reader)
	}()
	defer func() { stopRead(); <-collected }() // the reader goroutine ends before the reader closes

	if err := pr.writeHistory(ctx); err != nil {
		return lp, err
	}
	if err := pr.warmUp(); err != nil {
		return lp, err
	}
	var before map[string]*stageHist
	if c.Metrics.Address != "" {
		if before, err = scrapeStages(ctx, c.Metrics.Address); err != nil {
			return lp, err
		}
	}
	lp.Achieved = pr.offer(rate)
	if err := pr.trailUntilRead(rate, readDone, stopRead); err != nil {
		return lp, err
	}
	if c.Metrics.Address != "" {
		after, err := scrapeStages(ctx, c.Metrics.Address)
		if err != nil {
			return lp, err
		}
		lp.Stages = stagesBetween(before, after)
	}
	var hwm int64
	if pid != 0 {
		if hwm, err = PeakRSS(pid); err != nil {
			return lp, err
		}
	}
	lp.PeakRSS = float64(hwm) / (1 << 20)
	return pr.summarize(lp)
}

// pos is an input event's place in the log, the key that joins it to its prediction.
type pos struct {
	p   int32
	off int64
}

// probe is the state of one latency measurement. The producer's ack callbacks and the
// reader goroutine meet on mu; the stream is used by one goroutine at a time (the caller,
// then the trailer).
type probe struct {
	c      *config.Config
	prod   *topics.Producer
	stream *sim.Stream
	n      int  // measured events
	labels bool // write each event's label a simulated week after it

	mu       sync.Mutex
	sent     map[pos]time.Time // produce time of a measured event; zero: not measured
	pending  map[pos]time.Time // predictions read before their produce ack arrived
	lat      []time.Duration
	warmSeen map[int32]bool // partitions a warm-up event came back from
	acked    map[int32]bool // partitions an unmeasured event was written to
}

func newProbe(c *config.Config, prod *topics.Producer, n int, labels bool) *probe {
	return &probe{
		c: c, prod: prod, stream: sim.NewStream(9, 0), n: n, labels: labels,
		sent: map[pos]time.Time{}, pending: map[pos]time.Time{},
		warmSeen: map[int32]bool{}, acked: map[int32]bool{},
	}
}

// collect reads predictions until n measured ones have arrived or ctx ends.
func (pr *probe) collect(ctx context.Context, reader *topics.Reader) error {
	for {
		recs, err := reader.Fetch(ctx)
		complete, rerr := pr.arrived(recs, time.Now())
		if rerr != nil {
			return rerr
		}
		if complete || ctx.Err() != nil {
			return nil
		}
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
	}
}

// arrived records predictions read at now, and says whether all n have been.
func (pr *probe) arrived(recs []record.Record, now time.Time) (complete bool, err error) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	for _, r := range recs {
		k, err := sourceOf(r.Value)
		if err != nil {
			return false, err
		}
		ts, ok := pr.sent[k]
		switch {
		case !ok:
			pr.pending[k] = now
		case ts.IsZero():
			pr.warmSeen[k.p] = true
		default:
			pr.lat = append(pr.lat, now.Sub(ts))
		}
	}
	return len(pr.lat) >= pr.n, nil
}

// sourceOf reads the source partition and offset of a prediction (or of a relayed record).
func sourceOf(value []byte) (pos, error) {
	var v struct {
		Source struct {
			Partition int32 `json:"partition"`
			Offset    int64 `json:"offset"`
		} `json:"source"`
	}
	if err := json.Unmarshal(value, &v); err != nil {
		return pos{}, fmt.Errorf("latency: reading a prediction: %w", err)
	}
	return pos{v.Source.Partition, v.Source.Offset}, nil
}

// next returns the next simulated event, writing the labels that have come due.
func (pr *probe) next() sim.Tx {
	if !pr.labels {
		return pr.stream.Next(0, nil)
	}
	return pr.stream.Next(7*24*time.Hour, func(l *sim.Tx) {
		pr.prod.ProduceRaw(pr.c.Topics.Labels, l.Key(), l.AppendLabel(nil), nil, func(error) {})
	})
}

// writeHistory, with labels, writes a simulated week and a day first, so that labels are
// due from the first measured event on; the subject scores these while warming up.
func (pr *probe) writeHistory(ctx context.Context) error {
	if !pr.labels {
		return nil
	}
	_, err := sim.Produce(ctx, pr.prod, sim.ProduceOptions{Days: 8, Stream: pr.stream, HoldLabels: true,
		Topic: pr.c.Topics.Input[0], Labels: pr.c.Topics.Labels}, nil)
	return err
}

// sendUnmeasured offers an event whose prediction is read but not timed.
func (pr *probe) sendUnmeasured() {
	tx := pr.next()
	pr.prod.ProduceResult(pr.c.Topics.Input[0], tx.Key(), tx.AppendEvent(nil), func(part int32, off int64, _ time.Time, err error) {
		pr.mu.Lock()
		pr.sent[pos{part, off}] = time.Time{}
		if err == nil {
			pr.acked[part] = true
		}
		pr.mu.Unlock()
	})
}

// sendMeasured offers an event timed from its produce timestamp to its prediction's read.
func (pr *probe) sendMeasured() {
	tx := pr.next()
	pr.prod.ProduceResult(pr.c.Topics.Input[0], tx.Key(), tx.AppendEvent(nil), func(part int32, off int64, ts time.Time, err error) {
		if err != nil {
			return
		}
		k := pos{part, off}
		pr.mu.Lock()
		if got, ok := pr.pending[k]; ok {
			pr.lat = append(pr.lat, got.Sub(ts))
			delete(pr.pending, k)
		} else {
			pr.sent[k] = ts
		}
		pr.mu.Unlock()
	})
}

// warmUp sends unmeasured events until one has come back from every partition: the first
// events would also time the reader's and the subject's start-up (metadata, offsets, each
// partition's first fetch). Then it lets them drain and forgets what was read.
func (pr *probe) warmUp() error {
	for deadline := time.Now().Add(warmUpTimeout); !pr.warm(); {
		if time.Now().After(deadline) {
			return fmt.Errorf("latency: predictions did not come back from every partition within %v", warmUpTimeout)
		}
		pr.sendUnmeasured()
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(warmUpDrain)
	pr.mu.Lock()
	pr.lat, pr.pending = pr.lat[:0], map[pos]time.Time{}
	pr.mu.Unlock()
	return nil
}

// warm says whether every partition written to, and at least all the bench's, has answered.
func (pr *probe) warm() bool {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return len(pr.acked) >= partitions && len(pr.warmSeen) == len(pr.acked)
}

// offer sends the n measured events at rate, on a fixed schedule (a late event does not
// delay the next ones), and returns the rate achieved.
func (pr *probe) offer(rate float64) float64 {
	start := time.Now()
	for i := 0; i < pr.n; i++ {
		if wait := time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second)))); wait > 0 {
			time.Sleep(wait)
		}
		pr.sendMeasured()
	}
	return float64(pr.n) / time.Since(start).Seconds()
}

// trailUntilRead keeps unmeasured events coming at rate until the reader is done, or for
// at most readBackTimeout: with labels, the last measured events would otherwise wait for
// labels that never come (the idle timeout). A reader that times out is not an error
// here: summarize reports how many predictions were read.
func (pr *probe) trailUntilRead(rate float64, readDone <-chan error, stopRead func()) error {
	stopTrailer, trailerDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(trailerDone)
		tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
		defer tick.Stop()
		for {
			select {
			case <-stopTrailer:
				return
			case <-tick.C:
				pr.sendUnmeasured()
			}
		}
	}()
	defer func() { close(stopTrailer); <-trailerDone }()
	select {
	case err := <-readDone:
		return err
	case <-time.After(readBackTimeout):
		stopRead()
		<-readDone //nolint:errcheck // after stopRead its error is the cancel's
		return nil
	}
}

// summarize fills lp with the percentiles of the measured latencies.
func (pr *probe) summarize(lp LatencyPoint) (LatencyPoint, error) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	lat := slices.Clone(pr.lat)
	slices.Sort(lat)
	lp.Events = len(lat)
	lp.P50Ms, lp.P99Ms, lp.P999Ms = percentileMs(lat, 0.5), percentileMs(lat, 0.99), percentileMs(lat, 0.999)
	if len(lat) < pr.n {
		return lp, fmt.Errorf("latency at %.0f/s: %d of %d predictions read", lp.Offered, len(lat), pr.n)
	}
	return lp, nil
}

// percentileMs is the q-quantile of sorted, in milliseconds, by the nearest-rank method:
// the smallest value with at least q of the values at or below it. None gives 0.
func percentileMs(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return float64(sorted[min(max(i, 0), len(sorted)-1)]) / 1e6
}
