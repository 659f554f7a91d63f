package drivers

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/term"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/pipeline"
	"github.com/streamscore/streamscore/topics"
)

// DefaultJobTopic is the compacted topic that holds the record of each distributed
// backfill job, keyed by its group.
const DefaultJobTopic = "streamscore.backfill-jobs"

// jobProgressEvery is how often a distributed backfill prints the job's progress where no
// terminal shows a bar (a log file, a pod's output).
const jobProgressEvery = 10 * time.Second

// checkGroupBackfill refuses the options a distributed backfill cannot honour, saying
// what to change.
func checkGroupBackfill(c *config.Compiled, o BackfillOptions, kind string) error {
	if o.Group == "" {
		if o.Instance != "" {
			return fmt.Errorf("--instance names a process of a distributed backfill: it needs --group")
		}
		return nil
	}
	if kind != "topic" {
		return fmt.Errorf("--group %s: a distributed backfill writes a topic, in Kafka transactions shared by its processes; --out %s is a file on one machine: use --out topic:NAME, or drop --group", o.Group, o.Out)
	}
	if o.Group == c.Group {
		return fmt.Errorf("--group %s is the live consumer group (group in the config): a backfill job commits its own offsets and needs a group of its own", o.Group)
	}
	return nil
}

// fromSpec is how the job record names the start of the replay.
func fromSpec(from time.Time) string {
	if from.IsZero() {
		return "earliest"
	}
	return from.UTC().Format(time.RFC3339)
}

// groupBackfill runs this process's share of the distributed backfill job o.Group: it
// reads (or writes) the job record, joins the group with the exactly-once session of
// `run`, scores its partitions up to the job's ends and returns when every partition of
// the job is committed, whichever process scored it.
func groupBackfill(ctx context.Context, c *config.Compiled, kc topics.ClientConfig, oc pipeline.Config, o BackfillOptions, name string, log *zap.Logger, progress io.Writer) (*BackfillSummary, error) {
	if err := ensureBackfillTopics(ctx, c, kc, name); err != nil {
		return nil, err
	}
	jobTopic := o.JobTopic
	if jobTopic == "" {
		jobTopic = DefaultJobTopic
	}
	want := topics.BackfillJob{Group: o.Group, Topics: c.Topics.Input, From: fromSpec(o.From), Model: o.Model, Out: o.Out}
	job, created, err := topics.OpenBackfillJob(ctx, kc, jobTopic, c.Topics.ReplicationFactor, want)
	if err != nil {
		return nil, err
	}
	if err := job.Check(want); err != nil {
		return nil, err
	}
	log.Info("backfill job", zap.String("group", job.Group), zap.Bool("created", created),
		zap.Int64("offsets", job.Total()), zap.Time("began", job.Created))
	to, err := c.BackfillGroupOptions(o.Group, o.Instance)
	if err != nil {
		return nil, err
	}
	bg, err := topics.NewBoundedGroup(kc, to, job)
	if err != nil {
		return nil, err
	}
	defer bg.Close()
	reg := o.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	stats := &pipeline.Stats{}
	oc.Logger, oc.Metrics, oc.Stats = log, pipeline.NewMetrics(reg), stats
	closeState, err := stateSources(ctx, c, kc, &oc, config.Bounded)
	if err != nil {
		return nil, err
	}
	defer closeState()
	op, err := pipeline.New(oc, bg, bg)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	stopPrinting := printJobProgress(progress, job, bg.Done)
	err = runWithBar(progress, job.Total(), bg.Done, func() error { return op.Run(ctx) })
	stopPrinting()
	if err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("backfill job %s interrupted after %d events in this process (its partitions go to the others; start it again to rejoin): %w", o.Group, stats.Done.Load(), ctx.Err())
	}
	s := summarize(stats, time.Since(start))
	s.Group, s.JobOffsets, s.JobDone = job.Group, job.Total(), bg.Done()
	s.JobSeconds = time.Since(job.Created).Seconds()
	if s.JobSeconds > 0 {
		s.JobOffsetsPerSecond = float64(s.JobDone) / s.JobSeconds
	}
	return s, nil
}

// printJobProgress prints the whole job's progress to w every jobProgressEvery, where w is
// not a terminal (a terminal gets runWithBar's bar). The returned function stops it.
func printJobProgress(w io.Writer, job *topics.BackfillJob, done func() int64) func() {
	if f, ok := w.(*os.File); !ok || term.IsTerminal(int(f.Fd())) {
		return func() {}
	}
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(jobProgressEvery)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				fmt.Fprintln(w, jobProgressLine(job, done(), time.Now()))
			}
		}
	}()
	return func() { close(stop); <-stopped }
}

// jobProgressLine is one progress line of the job, all processes together.
func jobProgressLine(job *topics.BackfillJob, done int64, now time.Time) string {
	total := job.Total()
	pct := 100.0
	if total > 0 {
		pct = 100 * float64(done) / float64(total)
	}
	secs := now.Sub(job.Created).Seconds()
	rate := 0.0
	if secs > 0 {
		rate = float64(done) / secs
	}
	return fmt.Sprintf("backfill job %s: %d of %d offsets committed (%.1f%%), %.0f offsets/s since the job began", job.Group, done, total, pct, rate)
}
