package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"gopkg.in/yaml.v3"

	"github.com/streamscore/streamscore/pipeline"
	"github.com/streamscore/streamscore/scorer"
	"github.com/streamscore/streamscore/topics"
)

// Config is streamscore.yaml. Flags override STREAMSCORE_* variables, which override the
// file, which overrides the defaults.
type Config struct {
	Kafka  topics.ClientConfig `yaml:"kafka"`
	Group  string              `yaml:"group"`
	Topics TopicsConfig        `yaml:"topics"`
	// StartAt is where a new consumer group begins: earliest or latest.
	StartAt string `yaml:"start_at"`
	// SessionTimeout: how long the group waits for a silent member (0: 45s).
	SessionTimeout time.Duration `yaml:"session_timeout"`
	// Delivery is at-least-once (default) or exactly-once (Kafka transactions).
	Delivery string `yaml:"delivery"`
	// TransactionalID names this instance's transactional producer in exactly-once mode
	// (default <group>-<instance_id or hostname>); a restarted instance must keep it.
	TransactionalID string `yaml:"transactional_id"`
	// InstanceID turns on static group membership (e.g. the pod name of a StatefulSet).
	InstanceID string      `yaml:"instance_id"`
	Model      ModelConfig `yaml:"model"`
	Threshold  float64     `yaml:"threshold"`
	Batch      BatchConfig `yaml:"batch"`
	Producer   struct {
		Compression string        `yaml:"compression"` // lz4 (default), snappy, zstd, gzip or none
		Linger      time.Duration `yaml:"linger"`      // 0: none; batches still grow while a request is in flight
	} `yaml:"producer"`
	CommitInterval time.Duration `yaml:"commit_interval"`
	DrainTimeout   time.Duration `yaml:"drain_timeout"`
	Metrics        struct {
		Address string `yaml:"address"`
	} `yaml:"metrics"`
	Log struct {
		Level  string `yaml:"level"`
		Format string `yaml:"format"` // json or console
	} `yaml:"log"`
	Schema   pipeline.Schema         `yaml:"schema"`
	Feedback pipeline.FeedbackConfig `yaml:"feedback"`
	Features []pipeline.Feature      `yaml:"features"`
	// IncludeFeatures writes each prediction's model input into it ("features"), for
	// feature logging and skew audits.
	IncludeFeatures bool `yaml:"include_features"`
	// MemoryLimit is the Go runtime's soft memory limit of `run` (e.g. 200MiB; empty:
	// none): the garbage collector works harder near it instead of letting the heap
	// double. The GOMEMLIMIT variable, when set, wins. Batch commands ignore it.
	MemoryLimit string `yaml:"memory_limit"`

	path string // the file it came from, for resolving relative paths
}

// TopicsConfig names the topics.
type TopicsConfig struct {
	Input       []string `yaml:"input"`
	Labels      string   `yaml:"labels"`
	Predictions string   `yaml:"predictions"`
	Alerts      string   `yaml:"alerts"`
	DeadLetter  string   `yaml:"dead_letter"`
	Backfill    string   `yaml:"backfill"`
	// Create makes missing output topics at start, with Partitions partitions (0: as many
	// as the first input topic) and ReplicationFactor replicas (-1: broker default).
	Create            bool  `yaml:"create"`
	Partitions        int32 `yaml:"partitions"`
	ReplicationFactor int16 `yaml:"replication_factor"`
}

// ModelConfig selects the model and where it runs.
type ModelConfig struct {
	Path    string `yaml:"path"`
	Name    string `yaml:"name"`
	Device  string `yaml:"device"` // cpu or cuda
	GPU     int    `yaml:"gpu"`
	Threads int    `yaml:"threads"`
	Input   string `yaml:"input"`
	Output  string `yaml:"output"`
}

// BatchConfig tunes the micro-batcher (scorer.BatcherConfig).
type BatchConfig struct {
	MaxSize   int           `yaml:"max_size"`
	MaxWait   time.Duration `yaml:"max_wait"`
	QueueSize int           `yaml:"queue_size"`
	// Adaptive holds a batch open for more rows only when the fitted cost model says the
	// scorer is the bottleneck (scorer.Batcher); off: flush whenever the queue runs empty.
	Adaptive          bool    `yaml:"adaptive"`
	TargetUtilisation float64 `yaml:"target_utilisation"`
	PreferredSizes    []int   `yaml:"preferred_sizes"`
}

func defaultConfig() Config {
	var c Config
	c.Kafka.Brokers = []string{"127.0.0.1:9092"}
	c.Kafka.ClientID = "streamscore"
	c.Group = "streamscore"
	c.Topics = TopicsConfig{
		Input: []string{"transactions"}, Labels: "transactions.labels", Predictions: "predictions",
		Alerts: "fraud-alerts", DeadLetter: "transactions.dlq", Backfill: "predictions.backfill",
		Create: true, ReplicationFactor: -1,
	}
	c.StartAt = "earliest"
	c.Delivery = "at-least-once"
	c.Model.Device = "cpu"
	c.Model.Threads = 1
	c.Threshold = 0.5
	c.Batch = BatchConfig{MaxSize: 1024, MaxWait: 2 * time.Millisecond}
	c.Producer.Compression = "lz4"
	c.CommitInterval = time.Second
	c.DrainTimeout = 10 * time.Second
	c.Metrics.Address = ":9100"
	c.Log.Level = "info"
	c.Log.Format = "json"
	return c
}

// loadConfig reads path (if not empty) over the defaults, then applies the environment.
func loadConfig(path string) (*Config, error) {
	c := defaultConfig()
	if path != "" {
		raw, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("reading config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
		c.path = path
	}
	if err := c.applyEnv(os.LookupEnv); err != nil {
		return nil, err
	}
	return &c, nil
}

// envVars lists the STREAMSCORE_* variables and what they set.
var envVars = []struct {
	name, help string
	set        func(c *Config, v string) error
}{
	{"STREAMSCORE_BROKERS", "comma-separated host:port list", func(c *Config, v string) error { c.Kafka.Brokers = splitList(v); return nil }},
	{"STREAMSCORE_GROUP", "consumer group id", func(c *Config, v string) error { c.Group = v; return nil }},
	{"STREAMSCORE_DELIVERY", "at-least-once or exactly-once", func(c *Config, v string) error { c.Delivery = v; return nil }},
	{"STREAMSCORE_TRANSACTIONAL_ID", "transactional id (exactly-once)", func(c *Config, v string) error { c.TransactionalID = v; return nil }},
	{"STREAMSCORE_INSTANCE_ID", "static group membership id", func(c *Config, v string) error { c.InstanceID = v; return nil }},
	{"STREAMSCORE_INPUT_TOPICS", "comma-separated input topics", func(c *Config, v string) error { c.Topics.Input = splitList(v); return nil }},
	{"STREAMSCORE_MODEL_PATH", "the .onnx file", func(c *Config, v string) error { c.Model.Path = v; return nil }},
	{"STREAMSCORE_DEVICE", "cpu or cuda", func(c *Config, v string) error { c.Model.Device = v; return nil }},
	{"STREAMSCORE_THRESHOLD", "alert threshold", func(c *Config, v string) error { return parseFloat(&c.Threshold, v) }},
	{"STREAMSCORE_METRICS_ADDRESS", "host:port of /metrics (empty: off)", func(c *Config, v string) error { c.Metrics.Address = v; return nil }},
	{"STREAMSCORE_LOG_LEVEL", "debug, info, warn or error", func(c *Config, v string) error { c.Log.Level = v; return nil }},
	{"STREAMSCORE_BATCH_MAX_SIZE", "largest batch", func(c *Config, v string) error { return parseInt(&c.Batch.MaxSize, v) }},
	{"STREAMSCORE_BATCH_MAX_WAIT", "e.g. 2ms", func(c *Config, v string) error { return parseDur(&c.Batch.MaxWait, v) }},
	{"STREAMSCORE_BATCH_ADAPTIVE", "true or false", func(c *Config, v string) error { return parseBool(&c.Batch.Adaptive, v) }},
	{"STREAMSCORE_COMPRESSION", "lz4, snappy, zstd, gzip or none", func(c *Config, v string) error { c.Producer.Compression = v; return nil }},
	{"STREAMSCORE_SASL_USERNAME", "SASL user", func(c *Config, v string) error { c.Kafka.SASL.Username = v; return nil }},
	{"STREAMSCORE_SASL_PASSWORD", "SASL password", func(c *Config, v string) error { c.Kafka.SASL.Password = v; return nil }},
}

func (c *Config) applyEnv(lookup func(string) (string, bool)) error {
	for _, e := range envVars {
		if v, ok := lookup(e.name); ok {
			if err := e.set(c, v); err != nil {
				return fmt.Errorf("%s=%q: %w", e.name, v, err)
			}
		}
	}
	return nil
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func parseFloat(dst *float64, v string) error {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return errors.New("not a number")
	}
	*dst = f
	return nil
}

func parseInt(dst *int, v string) error {
	n, err := strconv.Atoi(v)
	if err != nil {
		return errors.New("not an integer")
	}
	*dst = n
	return nil
}

// parseBytes reads sizes such as 200MiB, 1GiB, 512KiB or a plain number of bytes.
func parseBytes(v string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}, {"", 1}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(v, u.suffix); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
			if err != nil || n < 0 {
				break
			}
			return n * u.mult, nil
		}
	}
	return 0, fmt.Errorf("%q: want a size such as 200MiB, 1GiB or a number of bytes", v)
}

// applyMemoryLimit sets the runtime's soft memory limit from memory_limit, unless
// GOMEMLIMIT is set.
func (c *Config) applyMemoryLimit() error {
	if c.MemoryLimit == "" || os.Getenv("GOMEMLIMIT") != "" {
		return nil
	}
	n, err := parseBytes(c.MemoryLimit)
	if err != nil {
		return fmt.Errorf("memory_limit %w", err)
	}
	if n > 0 {
		debug.SetMemoryLimit(n)
	}
	return nil
}

func parseBool(dst *bool, v string) error {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return errors.New("not true or false")
	}
	*dst = b
	return nil
}

func parseDur(dst *time.Duration, v string) error {
	d, err := time.ParseDuration(v)
	if err != nil {
		return errors.New("not a duration such as 2ms")
	}
	*dst = d
	return nil
}

// resolve makes a path from the config file relative to the file's folder.
func (c *Config) resolve(p string) string {
	if p == "" || filepath.IsAbs(p) || c.path == "" {
		return p
	}
	if _, err := os.Stat(p); err == nil {
		return p // already valid from the working directory
	}
	return filepath.Join(filepath.Dir(c.path), p)
}

// compiled is a validated config, ready to build an operator from.
type compiled struct {
	*Config
	schema   *pipeline.Schema
	features *pipeline.FeatureSpec
}

// validate checks everything that can be checked without a broker or the model, and says
// what to fix.
func (c *Config) validate(needKafka, needModel bool) (*compiled, error) {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if needKafka {
		if err := c.Kafka.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(c.Topics.Input) == 0 {
		add("topics.input: list at least one input topic")
	}
	if c.Topics.Predictions == "" {
		add("topics.predictions: name the predictions topic")
	}
	if c.Topics.DeadLetter == "" {
		add("topics.dead_letter: name the dead-letter topic")
	}
	if c.Group == "" {
		add("group: set a consumer group id")
	}
	if !needModel {
	} else if c.Model.Path == "" {
		add("model.path: point it at the .onnx file")
	} else if _, err := os.Stat(c.resolve(c.Model.Path)); err != nil {
		add("model.path: %v", err)
	}
	switch c.Producer.Compression {
	case "", "lz4", "snappy", "zstd", "gzip", "none":
	default:
		add("producer.compression %q: want lz4, snappy, zstd, gzip or none", c.Producer.Compression)
	}
	switch scorer.Device(c.Model.Device) {
	case scorer.CPU, scorer.CUDA:
	default:
		add("model.device %q: want cpu or cuda", c.Model.Device)
	}
	if c.Threshold < 0 || c.Threshold > 1 {
		add("threshold %v: want a score between 0 and 1", c.Threshold)
	}
	if c.Batch.MaxSize < 1 || c.Batch.MaxSize > 1<<16 {
		add("batch.max_size %d: want 1 to 65536", c.Batch.MaxSize)
	}
	if c.Batch.MaxWait < 0 || c.Batch.MaxWait > time.Second {
		add("batch.max_wait %v: want 0 to 1s", c.Batch.MaxWait)
	}
	if len(errs) == 0 {
		bc := (&compiled{Config: c}).operatorConfig(nil).Batch
		if _, err := scorer.NewBatcher(bc, func(context.Context, scorer.Batch[struct{}]) error { return nil }); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Delivery != "at-least-once" && c.Delivery != "exactly-once" {
		add("delivery %q: want at-least-once or exactly-once", c.Delivery)
	}
	if c.StartAt != "earliest" && c.StartAt != "latest" {
		add("start_at %q: want earliest or latest", c.StartAt)
	}
	schema := c.Schema
	if err := schema.Compile(); err != nil {
		errs = append(errs, err)
	}
	fs := &pipeline.FeatureSpec{Features: append([]pipeline.Feature(nil), c.Features...)}
	if len(c.Feedback.Fields) > 0 {
		fb := c.Feedback
		if err := fb.Schema.Compile(); err != nil {
			errs = append(errs, fmt.Errorf("feedback: %w", err))
		}
		if fb.IdleTimeout < 0 {
			add("feedback.idle_timeout %v: want a positive duration", fb.IdleTimeout)
		}
		fs.Feedback = &fb
	}
	if len(errs) == 0 {
		if err := fs.Compile(&schema); err != nil {
			errs = append(errs, err)
		} else if fs.UsesFeedback() && c.Topics.Labels == "" {
			add("topics.labels: feedback windows read the labels topic: name it")
		}
	}
	if len(errs) > 0 {
		src := "configuration"
		if c.path != "" {
			src = c.path
		}
		msgs := make([]string, len(errs))
		for i, e := range errs {
			msgs[i] = e.Error()
		}
		return nil, fmt.Errorf("%s is not valid:\n  - %s", src, strings.Join(msgs, "\n  - "))
	}
	return &compiled{Config: c, schema: &schema, features: fs}, nil
}

// prepare validates c for a command that talks to Kafka (and loads the model, with
// needModel) and builds its logger.
func (c *Config) prepare(needModel bool) (*compiled, *zap.Logger, error) {
	cc, err := c.validate(true, needModel)
	if err != nil {
		return nil, nil, err
	}
	log, err := newLogger(c.Log.Level, c.Log.Format)
	if err != nil {
		return nil, nil, err
	}
	return cc, log, nil
}

func (c *compiled) modelOptions() scorer.Options {
	return scorer.Options{
		Path: c.resolve(c.Model.Path), Name: c.Model.Name, Device: scorer.Device(c.Model.Device),
		CUDADevice: c.Model.GPU, Threads: c.Model.Threads, InputName: c.Model.Input, OutputName: c.Model.Output,
	}
}

func (c *compiled) operatorConfig(model pipeline.Scorer) pipeline.Config {
	return pipeline.Config{
		Schema: c.schema, Features: c.features, Model: model, Threshold: float32(c.Threshold),
		Topics:          pipeline.Topics{Predictions: c.Topics.Predictions, Alerts: c.Topics.Alerts, DeadLetter: c.Topics.DeadLetter},
		Batch:           scorer.BatcherConfig{MaxSize: c.Batch.MaxSize, MaxWait: c.Batch.MaxWait, QueueSize: c.Batch.QueueSize},
		CommitInterval:  c.CommitInterval,
		DrainTimeout:    c.DrainTimeout,
		IncludeFeatures: c.IncludeFeatures,
	}
}

// stateSources wires what window features read: the input partitions' history, and the
// labels topic as the feedback table (bounded for backfills and exports). The returned
// function closes them.
func (c *compiled) stateSources(ctx context.Context, kc topics.ClientConfig, oc *pipeline.Config, bounded bool) (func(), error) {
	if !c.features.HasWindows() {
		return func() {}, nil
	}
	oc.History = topics.NewHistory(kc)
	if !c.features.UsesFeedback() {
		return func() {}, nil
	}
	fb, err := topics.NewFeedback(ctx, kc, topics.FeedbackOptions{Topic: c.Topics.Labels, Bounded: bounded})
	if err != nil {
		return nil, err
	}
	oc.Feedback = fb
	return fb.Close, nil
}
