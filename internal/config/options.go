package config

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamscore/streamscore/internal/lifecycle"
	"github.com/streamscore/streamscore/pipeline"
	"github.com/streamscore/streamscore/scorer"
	"github.com/streamscore/streamscore/topics"
)

// The typed options of each component, from a validated config. Every key of Config that
// a component uses is copied here and nowhere else.

// ModelOptions is model.* for scorer.Open.
func (c *Compiled) ModelOptions() scorer.Options {
	return scorer.Options{
		Path: c.Resolve(c.Model.Path), Name: c.Model.Name, Device: scorer.Device(c.Model.Device),
		CUDADevice: c.Model.GPU, Threads: c.Model.Threads, InputName: c.Model.Input, OutputName: c.Model.Output,
	}
}

// BatcherConfig is batch.* for scorer.NewBatcher: every knob, adaptive ones included.
func (c *Compiled) BatcherConfig() scorer.BatcherConfig { return c.batcherConfig() }

func (c *Config) batcherConfig() scorer.BatcherConfig {
	return scorer.BatcherConfig{
		MaxSize: c.Batch.MaxSize, MaxWait: c.Batch.MaxWait, QueueSize: c.Batch.QueueSize,
		Adaptive: c.Batch.Adaptive, TargetUtilisation: c.Batch.TargetUtilisation,
		PreferredSizes: append([]int(nil), c.Batch.PreferredSizes...),
	}
}

// BatchJobBatcher is the batcher of a bounded replay (backfill, export): batch.* with the
// batch size of the job instead of batch.max_size. Scores do not depend on it.
func (c *Compiled) BatchJobBatcher(size int) (scorer.BatcherConfig, error) {
	bc := c.batcherConfig()
	if size <= 0 {
		return bc, nil
	}
	bc.MaxSize = size
	if bc.QueueSize != 0 && bc.QueueSize < size {
		bc.QueueSize = 0 // the default, 4 batches
	}
	if err := CheckBatcher(bc); err != nil {
		return bc, fmt.Errorf("batch size %d with the config's batch settings: %w", size, err)
	}
	return bc, nil
}

// Operator is the operator's configuration for model m: schema, features, threshold,
// output topics, batcher, commit and drain timing. Drivers add the source-specific parts
// (state sources, metrics, logger).
func (c *Compiled) Operator(m pipeline.Scorer) pipeline.Config {
	return pipeline.Config{
		Schema: c.Schema, Features: c.Features, Model: m, Threshold: float32(c.Threshold),
		Topics:         pipeline.Topics{Predictions: c.Topics.Predictions, Alerts: c.Topics.Alerts, DeadLetter: c.Topics.DeadLetter, Shadow: c.Topics.Shadow},
		Batch:          c.batcherConfig(),
		CommitInterval: c.CommitInterval,
		DrainTimeout:   c.DrainTimeout,
		// the exactly-once session's: a transaction's outputs may wait as long as it lives
		TransactionTimeout: topics.DefaultTransactionTimeout,
		IncludeFeatures:    c.IncludeFeatures,
		Drift:              c.DriftOptions(),
		IDField:            c.Feedback.IDField, // every output carries the event's id
		Explain:            c.ExplainOptions(),
	}
}

// GroupOptions is the consumer group of `run`; reg gets the lag gauge.
func (c *Compiled) GroupOptions(reg prometheus.Registerer) topics.GroupOptions {
	return topics.GroupOptions{
		Group: c.Group, Topics: c.Topics.Input, StartAt: c.StartAt, Registry: reg,
		SessionTimeout: c.SessionTimeout, InstanceID: c.InstanceID,
	}
}

// ProducerOptions is producer.* for the output topics of `run`.
func (c *Compiled) ProducerOptions() topics.ProducerOptions {
	return topics.ProducerOptions{Compression: c.Producer.Compression, Linger: c.Producer.Linger}
}

// TransactOptions is the exactly-once session of `run`: the group, and the
// transactional id (transactional_id, else <group>-<instance_id or host name>), which a
// restarted instance must keep.
func (c *Compiled) TransactOptions(reg prometheus.Registerer) (topics.TransactOptions, error) {
	id := c.TransactionalID
	if id == "" {
		suffix := c.InstanceID
		if suffix == "" {
			host, err := os.Hostname()
			if err != nil || host == "" {
				return topics.TransactOptions{}, ErrNoHostname
			}
			suffix = host
		}
		id = c.Group + "-" + suffix
	}
	return topics.TransactOptions{GroupOptions: c.GroupOptions(reg), TransactionalID: id}, nil
}

// BackfillGroupOptions is the exactly-once session of one process of the distributed
// backfill job group: the input topics in that group, with session_timeout, and, when
// instance (else instance_id) is set, static membership, so that a restarted process takes
// its partitions back at once. Its transactional id is <group>-<instance>, which a
// restarted process keeps, fencing its killed predecessor and aborting its open
// transaction; without an instance it is <group>-<host name>-<pid>, unique to the process,
// and a killed process's open transaction holds its partitions until it times out. Never
// the live group's transactional_id: the job is a group of its own.
func (c *Compiled) BackfillGroupOptions(group, instance string) (topics.TransactOptions, error) {
	if instance == "" {
		instance = c.InstanceID
	}
	g := topics.GroupOptions{
		Group: group, Topics: c.Topics.Input, StartAt: "earliest", SessionTimeout: c.SessionTimeout, InstanceID: instance,
		// One transaction per fetch: smaller than a replay's 20,000 so that a killed process
		// loses little work and the job's progress (committed offsets) moves steadily.
		MaxPollRecords: 5_000,
	}
	id := instance
	if id == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			return topics.TransactOptions{}, errors.New("backfill --group: pass --instance (the host name is unknown)")
		}
		id = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	return topics.TransactOptions{GroupOptions: g, TransactionalID: group + "-" + id}, nil
}

// ExactlyOnce reports whether `run` writes in transactions.
func (c *Compiled) ExactlyOnce() bool { return c.Delivery == DeliveryExactlyOnce }

// FeedbackOptions is the labels topic that feedback windows join; bounded for backfills
// and exports, which stop at the end offsets seen at start.
func (c *Compiled) FeedbackOptions(e Extent) topics.FeedbackOptions {
	return topics.FeedbackOptions{Topic: c.Topics.Labels, Bounded: e == Bounded}
}

// OutputTopics is what `run` creates when topics.create is on: the predictions, alerts
// and dead-letter topics (and the labels topic when feedback windows read it), each with
// topics.partitions partitions or, when that is 0, inputPartitions; and the replication
// factor (topics.replication_factor, -1: the broker's default). None when create is off.
func (c *Compiled) OutputTopics(inputPartitions int32) (replication int16, specs []topics.TopicSpec) {
	if !c.Topics.Create {
		return c.Topics.ReplicationFactor, nil
	}
	n := c.Topics.Partitions
	if n <= 0 {
		n = inputPartitions
	}
	names := []string{c.Topics.Predictions, c.Topics.Alerts, c.Topics.DeadLetter}
	if c.Registry.Enabled {
		names = append(names, c.Topics.Shadow)
	}
	if c.Features.UsesFeedback() {
		names = append(names, c.Topics.Labels)
	}
	if c.Drift.Enabled {
		names = append(names, c.Topics.Drift)
	}
	names = append(names, c.TableDeadLetters()...)
	for _, t := range names {
		if t != "" {
			specs = append(specs, topics.TopicSpec{Name: t, Partitions: n})
		}
	}
	return c.Topics.ReplicationFactor, specs
}

// BackfillOut is where a backfill writes by default: topic:<topics.backfill>.
func (c *Compiled) BackfillOut() string { return "topic:" + c.Topics.Backfill }

// RegistryOptions is registry.topic for topics.OpenRegistry, created (when missing) with
// topics.replication_factor; ok is false when registry.enabled is off.
func (c *Compiled) RegistryOptions() (o topics.RegistryOptions, ok bool) {
	return topics.RegistryOptions{Topic: c.Registry.Topic, Replication: c.Topics.ReplicationFactor}, c.Registry.Enabled
}

// LiveModels is how an instance follows the registry for model.name: the feature width,
// how versions load here (model.*), and model.max_bytes.
func (c *Compiled) LiveModels(fallback *scorer.Model) lifecycle.LiveOptions {
	o := c.ModelOptions()
	return lifecycle.LiveOptions{
		Name: fallback.Name(), Width: c.Features.Len(), Model: o, MaxBytes: c.Model.MaxBytes, Fallback: fallback,
		MaxLoadedBytes: c.Model.MaxLoadedBytes, Schema: c.Schema,
	}
}

// OpenRegistry opens the model registry of registry.topic (creating it when missing).
func (c *Compiled) OpenRegistry(ctx context.Context) (*topics.Registry, error) {
	ro, _ := c.RegistryOptions()
	return topics.OpenRegistry(ctx, c.Kafka, ro)
}
