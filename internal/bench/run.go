package bench

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/internal/sim"
	"github.com/streamscore/streamscore/topics"
)

// partitions is the partition count of every topic the bench creates.
const partitions = 3

// runner holds what the stages of one Run share.
type runner struct {
	base     *config.Config
	plan     Plan
	child    child
	suffix   string // makes this run's topic and group names unique
	progress io.Writer
}

func (r *runner) say(format string, args ...any) {
	fmt.Fprintf(r.progress, "bench: "+format+"\n", args...)
}

// Run measures the stages of plan against the brokers of base, on fresh topics named after
// this run, writing a line of progress to progress as each stage starts. It runs one stage
// at a time, in the order a, b, c, f, e, d (d's default loads depend on c), g, s, and returns
// the first error. Cancelling ctx stops it between steps; the child processes it started are
// stopped before it returns.
func Run(ctx context.Context, base *config.Config, plan Plan, progress io.Writer) (*Results, error) {
	if err := plan.validate(); err != nil {
		return nil, err
	}
	r := &runner{base: base, plan: plan, child: plan.child(), suffix: strconv.FormatInt(time.Now().UnixNano(), 36), progress: progress}
	res := &Results{
		Machine: fmt.Sprintf("%d CPUs, %s/%s, broker on the same machine", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH),
		Events:  plan.Events, Ratios: map[string]float64{},
	}
	c := r.topicsFor("bench")
	cc, err := c.Validate(config.Needs{Kafka: true, Model: true})
	if err != nil {
		return nil, err
	}
	if plan.needsBacklog() {
		if err := r.produceBacklog(ctx, c); err != nil {
			return nil, err
		}
	}
	profiled := catchUpConfig(c, plan)
	steps := []struct {
		stage Stage
		title string // the progress line as it starts; stage d says one per load
		run   func() error
	}{
		{StageKafkaCeiling, "(a) Kafka ceiling: consume->produce copy",
			func() (err error) { res.KafkaCeiling, err = r.kafkaCeiling(ctx, c); return err }},
		{StageScoringCeiling, "(b) scoring ceiling: ONNX Runtime alone",
			func() (err error) { res.Scoring, err = scoringCeiling(cc); return err }},
		{StageCatchUp, "(c) catch-up: a streamscore process from offset zero",
			func() (err error) { res.CatchUp, err = catchUp(ctx, r.child, profiled, plan.Events); return err }},
		{StageExactlyOnce, "(f) catch-up with delivery: exactly-once",
			func() (err error) {
				res.ExactlyOnce, err = catchUpExactlyOnce(ctx, r.child, profiled, plan.Events)
				return err
			}},
		{StageBackfill, "(e) backfill",
			func() (err error) { res.Backfill, err = r.backfill(ctx, c); return err }},
		{StageLatency, "", func() error { return r.latency(ctx, res) }},
		{StageCascade, "(g) cascade: the cheap model gating the forest, against the forest alone",
			func() (err error) { res.Cascade, err = r.cascade(ctx, cc); return err }},
		{StageScale, "", func() (err error) { res.Scale, err = r.scale(ctx); return err }},
	}
	for _, s := range steps {
		if !plan.Has(s.stage) {
			continue
		}
		if s.title != "" {
			r.say("%s", s.title)
		}
		if err := s.run(); err != nil {
			return nil, err
		}
	}
	computeRatios(res)
	return res, nil
}

// topicsFor returns base with topics and a group of its own, named "<kind>-<run>", a short
// commit interval and no metrics server.
func (r *runner) topicsFor(kind string) *config.Config {
	id := kind + "-" + r.suffix
	c := *r.base
	c.Topics.Input = []string{"tx-" + id}
	c.Topics.Labels = "labels-" + id
	c.Topics.Predictions = "preds-" + id
	c.Topics.Alerts = "alerts-" + id
	c.Topics.DeadLetter = "dlq-" + id
	c.Topics.Backfill = "backfill-" + id
	c.Group = "g-" + id
	c.Metrics.Address, c.Metrics.PProf = "", false
	c.CommitInterval = 100 * time.Millisecond
	return &c
}

// catchUpConfig is the config of the catch-up children (stages c and f): c, with the
// metrics server and the Go profiler on plan.Profile when it is set.
func catchUpConfig(c *config.Config, plan Plan) *config.Config {
	p := *c
	if plan.Profile != "" {
		p.Metrics.Address, p.Metrics.PProf = plan.Profile, true
	}
	return &p
}

// createTopics creates names, with the bench's partition count, where they do not exist.
func createTopics(ctx context.Context, c *config.Config, names ...string) error {
	return createTopicsN(ctx, c, partitions, names...)
}

// createTopicsN creates names, with n partitions each, where they do not exist.
func createTopicsN(ctx context.Context, c *config.Config, n int, names ...string) error {
	adm, err := topics.NewAdmin(c.Kafka)
	if err != nil {
		return err
	}
	defer adm.Close()
	specs := make([]topics.TopicSpec, 0, len(names))
	for _, name := range names {
		specs = append(specs, topics.TopicSpec{Name: name, Partitions: int32(n)})
	}
	return adm.EnsureTopics(ctx, c.Topics.ReplicationFactor, specs...)
}

// produceBacklog writes the plan's events, with their labels, to c's input topics: the
// backlog that stages a, c and e read.
func (r *runner) produceBacklog(ctx context.Context, c *config.Config) error {
	if err := createTopics(ctx, c, r.copyTopic()); err != nil {
		return err
	}
	return r.produce(ctx, c, partitions, r.plan.Events)
}

// produce writes n events, with their labels, to c's input topic, created with parts
// partitions (its labels topic with the bench's).
func (r *runner) produce(ctx context.Context, c *config.Config, parts, n int) error {
	if err := createTopicsN(ctx, c, parts, c.Topics.Input[0]); err != nil {
		return err
	}
	if err := createTopics(ctx, c, c.Topics.Labels); err != nil {
		return err
	}
	p, err := topics.NewProducer(c.Kafka, topics.ProducerOptions{})
	if err != nil {
		return err
	}
	defer p.Close()
	r.say("producing %d events", n)
	_, err = sim.Produce(ctx, p, sim.ProduceOptions{Events: n, Seed: 7, Topic: c.Topics.Input[0], Labels: c.Topics.Labels}, nil)
	return err
}

func (r *runner) copyTopic() string { return "copy-" + r.suffix }

// kafkaCeiling is stage a: a minimal franz-go consume->produce copy of the backlog.
func (r *runner) kafkaCeiling(ctx context.Context, c *config.Config) (float64, error) {
	d, err := topics.CopyTopic(ctx, c.Kafka, c.Topics.Input[0], r.copyTopic(), int64(r.plan.Events))
	if err != nil {
		return 0, err
	}
	return float64(r.plan.Events) / d.Seconds(), nil
}

// backfill is stage e: a `streamscore backfill` child replays the backlog into a topic.
func (r *runner) backfill(ctx context.Context, c *config.Config) (float64, error) {
	s, err := r.child.backfill(ctx, c, c.Topics.Backfill)
	if err != nil {
		return 0, err
	}
	return s.EventsPerSecond, nil
}

// latency is stage d: at each offered load, plan.Repeats rounds of the Kafka floor (a
// relay), the pipeline with the labels topic idle and the pipeline with labels flowing,
// each on topics of its own. The order alternates from round to round (floor first, then
// last), so that a drift of the machine's load over a step weighs on both sides alike.
func (r *runner) latency(ctx context.Context, res *Results) error {
	rates := r.plan.latencyRates(res.CatchUp.EventsPerSecond)
	for k := range r.plan.WarmupRounds {
		label := fmt.Sprintf("warm-up round %d of %d (discarded)", k+1, r.plan.WarmupRounds)
		if err := r.latencyRound(ctx, fmt.Sprintf("w-%d", k), rates[0], k, label, &LatencyRun{}); err != nil {
			return err
		}
	}
	for i, rate := range rates {
		runs := make([]LatencyRun, r.plan.repeats())
		for k := range runs {
			label := fmt.Sprintf("run %d of %d", k+1, len(runs))
			if err := r.latencyRound(ctx, fmt.Sprintf("%d-%d", i, k), rate, k, label, &runs[k]); err != nil {
				return err
			}
		}
		step := summarizeStep(rate, runs)
		res.LatencySteps = append(res.LatencySteps, step)
		res.Latency = append(res.Latency, step.Idle)
		res.LatencyLabels = append(res.LatencyLabels, step.Flowing)
		res.KafkaLatency = append(res.KafkaLatency, step.Floor)
	}
	return nil
}

// latencyRound is round k of an offered load: the floor and the pipeline's two runs, the
// floor first in even rounds and last in odd ones. label names the round in progress lines.
func (r *runner) latencyRound(ctx context.Context, id string, rate float64, k int, label string, run *LatencyRun) error {
	pipeline := pipelineSubject(r.child)
	probes := []struct {
		kind, what string
		subject    latencySubject
		labels     bool // the labels topic flows
		stages     bool // the subject serves the pipeline's stage times
		into       *LatencyPoint
	}{
		{"relay", "Kafka floor (a relay)", relaySubject, false, false, &run.Floor},
		{"lat", "streamscore, labels idle", pipeline, false, true, &run.Idle},
		{"flow", "streamscore, labels flowing", pipeline, true, true, &run.Flowing},
	}
	if k%2 == 1 {
		slices.Reverse(probes)
	}
	for _, p := range probes {
		r.say("(d) %.0f events/s offered, %s: %s", rate, label, p.what)
		lp, err := r.measure(ctx, p.kind+id, p.subject, rate, p.labels, p.stages)
		if err != nil {
			return err
		}
		*p.into = lp
	}
	return nil
}

// measure runs one latency probe on topics of its own named after kind; the subject
// creates the other topics it reads or writes. stages: the subject serves /metrics (a
// pipeline child), whose stage times are read before and after the load.
func (r *runner) measure(ctx context.Context, kind string, subject latencySubject, rate float64, labels, stages bool) (LatencyPoint, error) {
	c := r.topicsFor(kind)
	if stages {
		addr, err := freeAddress()
		if err != nil {
			return LatencyPoint{Offered: rate}, err
		}
		c.Metrics.Address = addr
	}
	if err := createTopics(ctx, c, c.Topics.Input[0]); err != nil {
		return LatencyPoint{Offered: rate}, err
	}
	defer r.dropTopics(c)
	return measureLatency(ctx, subject, c, rate, r.plan.Step, labels)
}

// dropTopics deletes the topics of one latency probe or scale run once it is over. Stage
// d creates five topics of 6 partitions for each of its probes (15 per offered load at 5
// repeats); left in place, they piled up on the one broker the later probes share, and
// the broker's tail latency grew with them over a run (the floor's p99 from about 20 ms
// in the first rounds to 85–204 ms in the last of nine). Stage s's hold millions of
// events each. A topic that cannot be deleted is said, not fatal: the figures already
// measured stand.
func (r *runner) dropTopics(c *config.Config) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm, err := topics.NewAdmin(c.Kafka)
	if err == nil {
		defer adm.Close()
		err = adm.DeleteTopics(ctx, append([]string{c.Topics.Labels, c.Topics.Predictions, c.Topics.Alerts, c.Topics.DeadLetter}, c.Topics.Input...)...)
	}
	if err != nil {
		r.say("leaving the topics of %s in place: %v", c.Topics.Input[0], err)
	}
}
