// Package config turns streamscore.yaml, the STREAMSCORE_* variables and command-line
// overrides into the typed, validated options of pipeline, scorer and topics. It is the one
// place where a knob is parsed, defaulted and checked, and the one place that copies it
// into the component that uses it; TestEveryKnobReachesItsComponent proves each one
// arrives.
//
// Precedence: flags (applied by the caller on the returned Config) override STREAMSCORE_*
// variables, which override the file, which overrides the defaults.
package config

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/streamscore/streamscore/pipeline"
	"github.com/streamscore/streamscore/topics"
)

// Config is streamscore.yaml.
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
	InstanceID     string                  `yaml:"instance_id"`
	Model          ModelConfig             `yaml:"model"`
	Registry       RegistryConfig          `yaml:"registry"`
	Threshold      float64                 `yaml:"threshold"`
	Batch          BatchConfig             `yaml:"batch"`
	Producer       ProducerConfig          `yaml:"producer"`
	CommitInterval time.Duration           `yaml:"commit_interval"`
	DrainTimeout   time.Duration           `yaml:"drain_timeout"`
	Metrics        MetricsConfig           `yaml:"metrics"`
	HTTP           HTTPConfig              `yaml:"http"`
	Log            LogConfig               `yaml:"log"`
	Schema         pipeline.Schema         `yaml:"schema"`
	Feedback       pipeline.FeedbackConfig `yaml:"feedback"`
	Features       []pipeline.Feature      `yaml:"features"`
	// Tables are the reference tables that lookup features read (docs/features.md).
	Tables []pipeline.TableConfig `yaml:"tables"`
	// IncludeFeatures writes each prediction's model input into it ("features"), for
	// feature logging and skew audits.
	IncludeFeatures bool `yaml:"include_features"`
	// Drift is drift monitoring against the training reference (drift.go).
	Drift DriftConfig `yaml:"drift"`
	// Explain is reason codes on alerts (explain.go).
	Explain ExplainConfig `yaml:"explain"`
	// MemoryLimit is the Go runtime's soft memory limit of `run` (e.g. 200MiB; empty:
	// none): the garbage collector works harder near it instead of letting the heap
	// double. The GOMEMLIMIT variable, when set, wins. Batch commands ignore it.
	MemoryLimit string `yaml:"memory_limit"`

	path string // the file it came from, for resolving relative paths and for messages

	// SchemaRegistry is the Schema Registry of a non-JSON schema.format (schemaregistry.go).
	SchemaRegistry topics.SchemaRegistryConfig `yaml:"schema_registry"`
	// Output is output.format: json or avro (schemaregistry.go).
	Output OutputConfig `yaml:"output"`
}

// TopicsConfig names the topics.
type TopicsConfig struct {
	Input       []string `yaml:"input"`
	Labels      string   `yaml:"labels"`
	Predictions string   `yaml:"predictions"`
	Alerts      string   `yaml:"alerts"`
	DeadLetter  string   `yaml:"dead_letter"`
	Backfill    string   `yaml:"backfill"`
	// Shadow receives the predictions of the shadow version, when one is active.
	Shadow string `yaml:"shadow"`
	// Drift receives a record per closed drift window (drift.enabled).
	Drift string `yaml:"drift"`
	// Create makes missing output topics at start, with Partitions partitions (0: as many
	// as the first input topic) and ReplicationFactor replicas (-1: broker default).
	Create            bool  `yaml:"create"`
	Partitions        int32 `yaml:"partitions"`
	ReplicationFactor int16 `yaml:"replication_factor"`
}

// ModelConfig selects the model and where it runs (scorer.Options).
type ModelConfig struct {
	Path    string `yaml:"path"`
	Name    string `yaml:"name"`
	Device  string `yaml:"device"` // cpu or cuda
	GPU     int    `yaml:"gpu"`
	Threads int    `yaml:"threads"`
	Input   string `yaml:"input"`
	Output  string `yaml:"output"`
	// MaxBytes refuses to load registry versions larger than this (0: any size): an
	// instance with little memory keeps scoring with the version it has.
	MaxBytes int64 `yaml:"max_bytes"`
	// MaxLoadedBytes bounds the bytes of the versions one instance serves with at once
	// (live, shadow, ensemble and cascade members, experiment treatment; 0: no bound): a
	// routing over it is refused by the commands and by the instances.
	MaxLoadedBytes int64 `yaml:"max_loaded_bytes"`
}

// RegistryConfig is the model registry and activation log on Kafka (internal/lifecycle).
type RegistryConfig struct {
	// Enabled makes `run` follow activations and write switch markers, and `backfill`
	// score each event with the version that was live for it.
	Enabled bool `yaml:"enabled"`
	// Topic is the compacted, single-partition topic of model files and activations.
	Topic string `yaml:"topic"`
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

// ProducerConfig tunes the producer of the output topics (topics.ProducerOptions).
type ProducerConfig struct {
	Compression string        `yaml:"compression"` // lz4 (default), snappy, zstd, gzip or none
	Linger      time.Duration `yaml:"linger"`      // 0: none; batches still grow while a request is in flight
}

// MetricsConfig is the HTTP server of /metrics and /healthz.
type MetricsConfig struct {
	// Address to listen on (default DefaultMetricsAddress); empty: no server.
	Address string `yaml:"address"`
	// PProf also serves the Go profiler under /debug/pprof/ (off by default: a profile
	// shows the command line and code paths, and a trace costs CPU; ask for it when
	// needed, on a private interface).
	PProf bool `yaml:"pprof"`
}

// DefaultMetricsAddress is where /metrics and /healthz listen unless told otherwise.
// Not 9100 (node_exporter's, usually on the same hosts) nor any port of Prometheus'
// "Default port allocations" list, whose exporter range starts at 9100 and has long
// run past 9999; 7591 is outside that list, its exceptions table and the host's
// /etc/services, and below the Linux ephemeral range (32768+), so an outgoing
// connection never holds it.
const DefaultMetricsAddress = ":7591"

// LogConfig is the logger's level and format.
type LogConfig struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"` // json or console
}

// Default is the configuration without a file or variables.
func Default() Config {
	var c Config
	c.Kafka.Brokers = []string{"127.0.0.1:9092"}
	c.Kafka.ClientID = "streamscore"
	c.Kafka.FailoverTimeout = topics.DefaultFailoverTimeout
	c.Group = "streamscore"
	c.Topics = TopicsConfig{
		Input: []string{"transactions"}, Labels: "transactions.labels", Predictions: "predictions",
		Alerts: "fraud-alerts", DeadLetter: "transactions.dlq", Backfill: "predictions.backfill",
		Shadow: "predictions.shadow", Drift: "streamscore.drift",
		Create: true, ReplicationFactor: -1,
	}
	c.StartAt = "earliest"
	c.Delivery = DeliveryAtLeastOnce
	c.Model.Device = "cpu"
	c.Model.Threads = 1
	c.Registry = RegistryConfig{Enabled: true, Topic: "streamscore.models"}
	c.Threshold = 0.5
	c.Drift = defaultDrift()
	c.Explain = defaultExplain()
	c.Batch = BatchConfig{MaxSize: 1024, MaxWait: 2 * time.Millisecond}
	c.Producer.Compression = "lz4"
	c.CommitInterval = time.Second
	c.DrainTimeout = 10 * time.Second
	c.Metrics.Address = DefaultMetricsAddress
	c.Log.Level = "info"
	c.Log.Format = "json"
	return c
}

// The delivery modes of `run`.
const (
	DeliveryAtLeastOnce = "at-least-once"
	DeliveryExactlyOnce = "exactly-once"
)

// Load reads path (if not empty) over the defaults, then applies the STREAMSCORE_*
// variables of the process environment.
func Load(path string) (*Config, error) {
	return LoadWith(path, os.LookupEnv)
}

// LoadWith is Load with the environment read through lookup (tests pass a map).
func LoadWith(path string, lookup func(string) (string, bool)) (*Config, error) {
	c := Default()
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
	if err := c.ApplyEnv(lookup); err != nil {
		return nil, err
	}
	if err := c.readRegistrySecret(); err != nil {
		return nil, err
	}
	if err := c.readSecrets(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Path is the file the config was read from ("" for none).
func (c *Config) Path() string { return c.path }

// Resolve makes a path from the config file relative to the file's folder, unless it is
// already valid from the working directory.
func (c *Config) Resolve(p string) string {
	if p == "" || filepath.IsAbs(p) || c.path == "" {
		return p
	}
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return filepath.Join(filepath.Dir(c.path), p)
}

// Redacted is a copy that is safe to print: secrets replaced.
func (c *Config) Redacted() Config {
	shown := *c
	if shown.Kafka.SASL.Password != "" {
		shown.Kafka.SASL.Password = "<redacted>"
	}
	if shown.SchemaRegistry.Password != "" {
		shown.SchemaRegistry.Password = "<redacted>"
	}
	return shown
}

// ApplyMemoryLimit sets the runtime's soft memory limit from memory_limit, unless
// GOMEMLIMIT is set. Live scoring only: batch jobs read ahead in large fetches and are
// faster left to the default GC pacing.
func (c *Config) ApplyMemoryLimit() error {
	if c.MemoryLimit == "" || os.Getenv("GOMEMLIMIT") != "" {
		return nil
	}
	n, err := ParseBytes(c.MemoryLimit)
	if err != nil {
		return fmt.Errorf("memory_limit %w", err)
	}
	if n > 0 {
		debug.SetMemoryLimit(n)
	}
	return nil
}

// SplitList splits a comma-separated list, dropping empty items.
func SplitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// ParseBytes reads sizes such as 200MiB, 1GiB, 512KiB or a plain number of bytes.
func ParseBytes(v string) (int64, error) {
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

// CommandLine is what the commands' global flags override: the config file (default
// ./streamscore.yaml when present), the brokers and the log level.
type CommandLine struct {
	Path, Brokers, LogLevel string
}

// LoadCommandLine loads the config as the commands do: the file, STREAMSCORE_*, then
// the flags.
func LoadCommandLine(o CommandLine) (*Config, error) {
	if o.Path == "" {
		if _, err := os.Stat("streamscore.yaml"); err == nil {
			o.Path = "streamscore.yaml"
		}
	}
	c, err := Load(o.Path)
	if err != nil {
		return nil, err
	}
	if o.Brokers != "" {
		c.Kafka.Brokers = SplitList(o.Brokers)
	}
	if o.LogLevel != "" {
		c.Log.Level = o.LogLevel
	}
	return c, nil
}
