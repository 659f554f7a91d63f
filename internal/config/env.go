package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// EnvVar is one STREAMSCORE_* variable: its name, what it sets, and how.
type EnvVar struct {
	Name string
	// Key is the config key it overrides, as written in streamscore.yaml.
	Key  string
	Help string
	set  func(c *Config, v string) error
}

// EnvVars lists the STREAMSCORE_* variables, in the order `config env` prints them.
func EnvVars() []EnvVar { return envVars }

func str(dst func(c *Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *dst(c) = v; return nil }
}

var envVars = []EnvVar{
	{"STREAMSCORE_BROKERS", "kafka.brokers", "comma-separated host:port list", func(c *Config, v string) error { c.Kafka.Brokers = SplitList(v); return nil }},
	{"STREAMSCORE_KAFKA_FAILOVER_TIMEOUT", "kafka.failover_timeout", "how long a broker failure is waited out before giving up, e.g. 60s",
		func(c *Config, v string) error { return parseDur(&c.Kafka.FailoverTimeout, v) }},
	{"STREAMSCORE_GROUP", "group", "consumer group id", str(func(c *Config) *string { return &c.Group })},
	{"STREAMSCORE_DELIVERY", "delivery", "at-least-once or exactly-once", str(func(c *Config) *string { return &c.Delivery })},
	{"STREAMSCORE_TRANSACTIONAL_ID", "transactional_id", "transactional id (exactly-once)", str(func(c *Config) *string { return &c.TransactionalID })},
	{"STREAMSCORE_INSTANCE_ID", "instance_id", "static group membership id", str(func(c *Config) *string { return &c.InstanceID })},
	{"STREAMSCORE_INPUT_TOPICS", "topics.input", "comma-separated input topics", func(c *Config, v string) error { c.Topics.Input = SplitList(v); return nil }},
	{"STREAMSCORE_MODEL_PATH", "model.path", "the .onnx file", str(func(c *Config) *string { return &c.Model.Path })},
	{"STREAMSCORE_DEVICE", "model.device", "cpu or cuda", str(func(c *Config) *string { return &c.Model.Device })},
	{"STREAMSCORE_THRESHOLD", "threshold", "alert threshold", func(c *Config, v string) error { return parseFloat(&c.Threshold, v) }},
	{"STREAMSCORE_METRICS_ADDRESS", "metrics.address", "host:port of /metrics (empty: off)", str(func(c *Config) *string { return &c.Metrics.Address })},
	{"STREAMSCORE_METRICS_PPROF", "metrics.pprof", "true serves /debug/pprof/ on the metrics address (default false)", func(c *Config, v string) error { return parseBool(&c.Metrics.PProf, v) }},
	{"STREAMSCORE_HTTP_ADDRESS", "http.address", "host:port of the HTTP scoring API (empty: off)", str(func(c *Config) *string { return &c.HTTP.Address })},
	{"STREAMSCORE_LOG_LEVEL", "log.level", "debug, info, warn or error", str(func(c *Config) *string { return &c.Log.Level })},
	{"STREAMSCORE_BATCH_MAX_SIZE", "batch.max_size", "largest batch", func(c *Config, v string) error { return parseInt(&c.Batch.MaxSize, v) }},
	{"STREAMSCORE_BATCH_MAX_WAIT", "batch.max_wait", "e.g. 2ms", func(c *Config, v string) error { return parseDur(&c.Batch.MaxWait, v) }},
	{"STREAMSCORE_BATCH_QUEUE_SIZE", "batch.queue_size", "rows waiting for the scorer before fetching pauses", func(c *Config, v string) error { return parseInt(&c.Batch.QueueSize, v) }},
	{"STREAMSCORE_BATCH_ADAPTIVE", "batch.adaptive", "true or false", func(c *Config, v string) error { return parseBool(&c.Batch.Adaptive, v) }},
	{"STREAMSCORE_BATCH_TARGET_UTILISATION", "batch.target_utilisation", "0 to 1, e.g. 0.9 (adaptive batching)", func(c *Config, v string) error { return parseFloat(&c.Batch.TargetUtilisation, v) }},
	{"STREAMSCORE_BATCH_PREFERRED_SIZES", "batch.preferred_sizes", "comma-separated batch sizes, e.g. 32,256,1024", func(c *Config, v string) error { return parseInts(&c.Batch.PreferredSizes, v) }},
	{"STREAMSCORE_COMPRESSION", "producer.compression", "lz4, snappy, zstd, gzip or none", str(func(c *Config) *string { return &c.Producer.Compression })},
	{"STREAMSCORE_SASL_USERNAME", "kafka.sasl.username", "SASL user", str(func(c *Config) *string { return &c.Kafka.SASL.Username })},
	{"STREAMSCORE_SASL_PASSWORD", "kafka.sasl.password", "SASL password (never printed)", str(func(c *Config) *string { return &c.Kafka.SASL.Password })},
	{"STREAMSCORE_SASL_PASSWORD_FILE", "kafka.sasl.password_file", "file holding the SASL password, e.g. a mounted Secret", str(func(c *Config) *string { return &c.Kafka.SASL.PasswordFile })},
}

// ApplyEnv applies the STREAMSCORE_* variables that lookup finds.
func (c *Config) ApplyEnv(lookup func(string) (string, bool)) error {
	for _, e := range envVars {
		if v, ok := lookup(e.Name); ok {
			if err := e.set(c, v); err != nil {
				return fmt.Errorf("%s=%q: %w", e.Name, v, err)
			}
		}
	}
	return nil
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

func parseInts(dst *[]int, v string) error {
	var out []int
	for _, s := range SplitList(v) {
		n, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("%q is not an integer: want a list such as 32,256,1024", s)
		}
		out = append(out, n)
	}
	*dst = out
	return nil
}

func parseBool(dst *bool, v string) error {
	b, err := strconv.ParseBool(strings.TrimSpace(v))
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
