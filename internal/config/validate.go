package config

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/streamscore/streamscore/pipeline"
	"github.com/streamscore/streamscore/pipeline/drift"
	"github.com/streamscore/streamscore/scorer"
	"github.com/streamscore/streamscore/topics"
)

// Needs says what a command will use, and so what must be valid: a command that reads
// no model does not fail on a missing model file.
type Needs struct {
	Kafka bool // the brokers and client settings
	Model bool // model.path must name a readable file
}

// ModelNeed says whether a command scores (and so needs model.path) or only reads
// features (export).
type ModelNeed int

// What a command needs of the model.
const (
	NoModel   ModelNeed = iota // export: features only
	NeedModel                  // run, backfill, drift: the command scores
)

// Extent says how far a job reads its topics: live scoring follows them (Unbounded);
// backfills and exports stop at the end offsets seen at start (Bounded).
type Extent int

// How far a job reads.
const (
	Unbounded Extent = iota // live scoring: follow the topics
	Bounded                 // backfills and exports: stop at the end offsets seen at start
)

// Compiled is a validated config with its schema and feature spec compiled, ready to be
// turned into the options of pipeline, scorer and topics. Its methods are the only
// place that copies config keys into those options.
type Compiled struct {
	*Config
	Schema   *pipeline.Schema
	Features *pipeline.FeatureSpec
	// DriftReference is drift.reference, read and checked (nil: none).
	DriftReference *drift.Reference
}

// problems collects what is wrong with a config, to report all of it at once.
type problems []error

func (p *problems) add(format string, args ...any) { *p = append(*p, fmt.Errorf(format, args...)) }
func (p *problems) err(err error) {
	if err != nil {
		*p = append(*p, err)
	}
}

// Validate checks everything that can be checked without a broker or the model, and says
// what to fix: every problem, one per line.
func (c *Config) Validate(needs Needs) (*Compiled, error) {
	var p problems
	if needs.Kafka {
		p.err(c.Kafka.Validate())
	}
	c.checkTopics(&p)
	c.checkFailover(&p)
	if needs.Model {
		c.checkModelFile(&p)
	}
	c.checkScoring(&p)
	c.checkBatch(&p)
	c.checkHTTP(&p)
	c.checkMetrics(&p)
	c.checkSchemaRegistry(&p)
	schema, features := c.compileSpec(&p)
	// A reference of other features is not an error here: the operator logs it and does
	// not count that version's rows.
	ref := c.checkDrift(&p)
	c.checkExplain(&p)
	if len(p) > 0 {
		src := "configuration"
		if c.path != "" {
			src = c.path
		}
		msgs := make([]string, len(p))
		for i, e := range p {
			msgs[i] = e.Error()
		}
		return nil, fmt.Errorf("%s is not valid:\n  - %s", src, strings.Join(msgs, "\n  - "))
	}
	return &Compiled{Config: c, Schema: schema, Features: features, DriftReference: ref}, nil
}

func (c *Config) checkTopics(p *problems) {
	if len(c.Topics.Input) == 0 {
		p.add("topics.input: list at least one input topic")
	}
	if c.Topics.Predictions == "" {
		p.add("topics.predictions: name the predictions topic")
	}
	if c.Topics.DeadLetter == "" {
		p.add("topics.dead_letter: name the dead-letter topic")
	}
	if c.Registry.Enabled && c.Registry.Topic == "" {
		p.add("registry.topic: name the model registry topic, or set registry.enabled: false")
	}
	if c.Model.MaxBytes < 0 {
		p.add("model.max_bytes %d: want 0 (no limit) or a size in bytes", c.Model.MaxBytes)
	}
	if c.Model.MaxLoadedBytes < 0 {
		p.add("model.max_loaded_bytes %d: want 0 (no limit) or a size in bytes", c.Model.MaxLoadedBytes)
	}
	if c.Group == "" {
		p.add("group: set a consumer group id")
	}
	if c.Delivery != DeliveryAtLeastOnce && c.Delivery != DeliveryExactlyOnce {
		p.add("delivery %q: want %s or %s", c.Delivery, DeliveryAtLeastOnce, DeliveryExactlyOnce)
	}
	if c.StartAt != "earliest" && c.StartAt != "latest" {
		p.add("start_at %q: want earliest or latest", c.StartAt)
	}
	switch c.Producer.Compression {
	case "", "lz4", "snappy", "zstd", "gzip", "none":
	default:
		p.add("producer.compression %q: want lz4, snappy, zstd, gzip or none", c.Producer.Compression)
	}
}

// checkFailover: kafka.failover_timeout bounds every wait for a broker failure (requests,
// start-up steps, restarts of the live job); 0 or less would turn each fault into an exit.
func (c *Config) checkFailover(p *problems) {
	if c.Kafka.FailoverTimeout <= 0 {
		p.add("kafka.failover_timeout %v: want a duration above 0, well above the brokers' failover "+
			"(broker.session.timeout.ms, 9s on KRaft, plus a metadata refresh), e.g. %v", c.Kafka.FailoverTimeout, topics.DefaultFailoverTimeout)
	}
}

func (c *Config) checkModelFile(p *problems) {
	if c.Model.Path == "" {
		p.add("model.path: point it at the .onnx file")
	} else if _, err := os.Stat(c.Resolve(c.Model.Path)); err != nil {
		p.add("model.path: %v", err)
	}
}

func (c *Config) checkScoring(p *problems) {
	switch scorer.Device(c.Model.Device) {
	case scorer.CPU, scorer.CUDA:
	default:
		p.add("model.device %q: want cpu or cuda", c.Model.Device)
	}
	if c.Threshold < 0 || c.Threshold > 1 {
		p.add("threshold %v: want a score between 0 and 1", c.Threshold)
	}
}

func (c *Config) checkBatch(p *problems) {
	if c.Batch.MaxSize < 1 || c.Batch.MaxSize > 1<<16 {
		p.add("batch.max_size %d: want 1 to 65536", c.Batch.MaxSize)
		return
	}
	if c.Batch.MaxWait < 0 || c.Batch.MaxWait > time.Second {
		p.add("batch.max_wait %v: want 0 to 1s", c.Batch.MaxWait)
		return
	}
	// The batcher's own checks (target_utilisation, preferred_sizes, queue_size) speak
	// its field names; say which config keys they are.
	if err := CheckBatcher(c.batcherConfig()); err != nil {
		p.add("batch (max_size, queue_size, adaptive, target_utilisation, preferred_sizes): %v", err)
	}
}

// CheckBatcher reports whether a batcher accepts bc, with its message.
func CheckBatcher(bc scorer.BatcherConfig) error {
	_, err := scorer.NewBatcher(bc, func(context.Context, scorer.Batch[struct{}]) error { return nil })
	return err
}

func (c *Config) compileSpec(p *problems) (*pipeline.Schema, *pipeline.FeatureSpec) {
	schema := c.Schema
	if err := schema.Compile(); err != nil {
		p.err(err)
	}
	fs := &pipeline.FeatureSpec{Features: pipeline.ExpandLookups(c.Features)}
	fs.Tables = c.compileTables(p)
	if len(c.Feedback.Fields) > 0 {
		fb := c.Feedback
		if err := fb.Compile(); err != nil {
			p.err(fmt.Errorf("feedback: %w", err))
		}
		if fb.IdleTimeout < 0 {
			p.add("feedback.idle_timeout %v: want a positive duration", fb.IdleTimeout)
		}
		fs.Feedback = &fb
	}
	if len(*p) > 0 {
		return nil, nil
	}
	if err := fs.Compile(&schema); err != nil {
		p.err(err)
	} else if fs.UsesFeedback() && c.Topics.Labels == "" {
		p.add("topics.labels: feedback windows read the labels topic: name it")
	}
	return &schema, fs
}

// ErrNoHostname is returned when exactly-once needs a transactional id and none can be
// made up.
var ErrNoHostname = errors.New("exactly-once: set transactional_id (or instance_id): the host name is unknown")
