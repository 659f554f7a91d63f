package topics

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamscore/streamscore/pipeline/record"
)

// BackfillJob is the record that every process of a distributed backfill shares: what the
// job replays (topics, start spec, model), where it writes, and the offset range of each
// partition, captured once for the whole job.
type BackfillJob struct {
	Group      string         `json:"group"`
	Topics     []string       `json:"topics"`
	From       string         `json:"from"`  // "earliest" or an RFC 3339 time
	Model      string         `json:"model"` // the what-if NAME@VERSION, "" for the live versions
	Out        string         `json:"out"`
	Created    time.Time      `json:"created"`
	Partitions []JobPartition `json:"partitions"`
}

// JobPartition is one partition's range: offsets [Start, End) are the job's.
type JobPartition struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Start     int64  `json:"start"`
	End       int64  `json:"end"`
}

// OpenBackfillJob returns the job record of want.Group in the compacted job topic, writing
// want (its ranges captured now) when there is none yet.
//
// Why a record in a topic, read back, earliest wins: processes start at different times on
// different machines while the input may still grow, so each capturing its own end offsets
// would give each partition whatever end its current owner saw, and a partition moving
// between owners would change its end mid-job. The first record written for the group is
// the job; two processes starting together both write, both read the topic back, and both
// take the earlier one (the topic has one partition, so offsets order every record). A
// process that wrote a losing record writes the winner again, so that compaction, which
// keeps a key's latest record, keeps the winner too. Kafka is the only shared state the
// processes have, which is why it holds the record rather than a file or a flag.
func OpenBackfillJob(ctx context.Context, cc ClientConfig, topic string, replication int16, want BackfillJob) (*BackfillJob, bool, error) {
	adm, err := NewAdmin(cc)
	if err != nil {
		return nil, false, err
	}
	defer adm.Close()
	compact := "compact"
	if err := adm.EnsureTopics(ctx, replication, TopicSpec{Name: topic, Partitions: 1, Configs: map[string]*string{"cleanup.policy": &compact}}); err != nil {
		return nil, false, fmt.Errorf("backfill job topic: %w", err)
	}
	if job, _, err := readJob(ctx, cc, topic, want.Group); err != nil || job != nil {
		return job, false, err
	}
	if want.Partitions, err = captureRanges(ctx, cc, adm.adm, want.Topics, want.From); err != nil {
		return nil, false, err
	}
	want.Created = time.Now().UTC()
	mine, err := json.Marshal(&want)
	if err != nil {
		return nil, false, err
	}
	if err := writeJob(ctx, cc, topic, want.Group, mine); err != nil {
		return nil, false, err
	}
	job, raw, err := readJob(ctx, cc, topic, want.Group)
	if err != nil {
		return nil, false, err
	}
	if job == nil {
		return nil, false, fmt.Errorf("backfill job topic %s: the job record of %s just written is not there", topic, want.Group)
	}
	if !bytes.Equal(raw, mine) { // another process won: make its record the latest too
		if err := writeJob(ctx, cc, topic, want.Group, raw); err != nil {
			return nil, false, err
		}
		return job, false, nil
	}
	return job, true, nil
}

// readJob returns the earliest record for group in the job topic (nil: none).
func readJob(ctx context.Context, cc ClientConfig, topic, group string) (*BackfillJob, []byte, error) {
	var raw []byte
	read := func() error {
		raw = nil
		return ReadToEnd(ctx, cc, []string{topic}, func(recs []record.Record) error {
			for _, r := range recs {
				if raw == nil && string(r.Key) == group && len(r.Value) > 0 {
					raw = r.Value
				}
			}
			return nil
		})
	}
	err := read()
	// A job topic just created may not have a leader yet.
	for try := 0; try < 50 && errors.Is(err, kerr.UnknownTopicOrPartition); try++ {
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		err = read()
	}
	if err != nil || raw == nil {
		return nil, nil, err
	}
	var job BackfillJob
	if err := json.Unmarshal(raw, &job); err != nil {
		return nil, nil, fmt.Errorf("backfill job topic %s: the record of %s is not a job record: %w", topic, group, err)
	}
	return &job, raw, nil
}

func writeJob(ctx context.Context, cc ClientConfig, topic, group string, value []byte) error {
	opts, err := cc.opts("producer")
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte(group), Value: value}).FirstErr(); err != nil {
		return fmt.Errorf("writing the backfill job record: %w", err)
	}
	return nil
}

// captureRanges lists, for every partition of names, the job's start (the earliest offset,
// or the first at or after from) and end (the last stable offset: what a read_committed
// consumer can reach now). A partition with nothing in range gets Start == End.
func captureRanges(ctx context.Context, cc ClientConfig, adm *kadm.Client, names []string, from string) ([]JobPartition, error) {
	var ends, starts kadm.ListedOffsets
	err := WithinFailover(ctx, cc, "backfill job: listing end offsets", func(ctx context.Context) (err error) {
		ends, err = listed(adm.ListCommittedOffsets(ctx, names...))
		return err
	})
	if err != nil {
		return nil, err
	}
	var at time.Time
	if from != "" && from != "earliest" {
		if at, err = time.Parse(time.RFC3339, from); err != nil {
			return nil, fmt.Errorf("backfill job: from %q: %w", from, err)
		}
	}
	err = WithinFailover(ctx, cc, "backfill job: listing start offsets", func(ctx context.Context) (err error) {
		if at.IsZero() {
			starts, err = listed(adm.ListStartOffsets(ctx, names...))
		} else {
			starts, err = listed(adm.ListOffsetsAfterMilli(ctx, at.UnixMilli(), names...))
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	for _, t := range names {
		if _, ok := ends[t]; !ok {
			return nil, fmt.Errorf("backfill job: topic %s does not exist", t)
		}
	}
	var ps []JobPartition
	ends.Each(func(e kadm.ListedOffset) {
		start := e.Offset
		if s, ok := starts.Lookup(e.Topic, e.Partition); ok && s.Offset >= 0 && s.Offset < e.Offset {
			start = s.Offset
		}
		ps = append(ps, JobPartition{Topic: e.Topic, Partition: e.Partition, Start: start, End: e.Offset})
	})
	slices.SortFunc(ps, func(a, b JobPartition) int {
		if a.Topic != b.Topic {
			return cmp.Compare(a.Topic, b.Topic)
		}
		return int(a.Partition - b.Partition)
	})
	return ps, nil
}

// Check reports, as an error that says what to change, where this process's job differs
// from the recorded one: every process of a job must replay the same thing.
func (j *BackfillJob) Check(mine BackfillJob) error {
	diff := func(what, rec, here string) error {
		return fmt.Errorf("backfill job %s was started with %s %s; this process has %s: run it with the job's settings, or pick a new --group for a new job",
			j.Group, what, rec, here)
	}
	if !slices.Equal(j.Topics, mine.Topics) {
		return diff("input topics", fmt.Sprint(j.Topics), fmt.Sprint(mine.Topics)+" (topics.input)")
	}
	if j.From != mine.From {
		return diff("--from", j.From, mine.From)
	}
	if j.Model != mine.Model {
		return diff("--model", quoted(j.Model), quoted(mine.Model))
	}
	if j.Out != mine.Out {
		return diff("--out", j.Out, mine.Out)
	}
	return nil
}

func quoted(s string) string {
	if s == "" {
		return `"" (the live versions)`
	}
	return s
}

// Total is the number of offsets in the job's ranges.
func (j *BackfillJob) Total() int64 {
	var n int64
	for _, p := range j.Partitions {
		n += p.End - p.Start
	}
	return n
}

// Progress measures the job against committed offsets (committed(topic, partition), ok
// false when the group has none): the offsets done, and whether every partition's
// committed offset reached its end.
func (j *BackfillJob) Progress(committed func(string, int32) (int64, bool)) (done int64, complete bool) {
	complete = true
	for _, p := range j.Partitions {
		if p.End <= p.Start {
			continue
		}
		at, ok := committed(p.Topic, p.Partition)
		if !ok || at < p.Start {
			at = p.Start
		}
		if at < p.End {
			complete = false
		}
		done += min(at, p.End) - p.Start
	}
	return done, complete
}

// ends maps each partition of the job to its range.
func (j *BackfillJob) ranges() map[string]map[int32]JobPartition {
	m := map[string]map[int32]JobPartition{}
	for _, p := range j.Partitions {
		if m[p.Topic] == nil {
			m[p.Topic] = map[int32]JobPartition{}
		}
		m[p.Topic][p.Partition] = p
	}
	return m
}
