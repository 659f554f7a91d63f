package config

import (
	"os"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	"gopkg.in/yaml.v3"

	"github.com/streamscore/streamscore/scorer"
)

const (
	referenceConfig = "../../streamscore.yaml"
	referenceModel  = "../../testdata/model/fraud.onnx"
)

// knob is one documented key: a value different from the reference config's, set from the
// YAML file and (where a variable exists) from the environment, and a probe that reads it
// back from the options handed to the component that uses it — not from Config.
type knob struct {
	key   string // the YAML path, dotted
	yaml  any    // the value written into the file
	env   string // the STREAMSCORE_* variable, if any
	envV  string // its value
	probe func(t *testing.T, c *Compiled) any
	want  any
}

func knobs() []knob {
	batch := func(f func(b reflect.Value) any) func(*testing.T, *Compiled) any {
		return func(t *testing.T, c *Compiled) any {
			// The operator hands Operator().Batch to scorer.NewBatcher; the batch jobs use
			// BatchJobBatcher: both must carry the knob.
			op := c.Operator(nil).Batch
			job, err := c.BatchJobBatcher(c.Batch.MaxSize)
			if err != nil {
				t.Fatal(err)
			}
			a, b := f(reflect.ValueOf(op)), f(reflect.ValueOf(job))
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("operator batcher has %v, batch jobs' %v", a, b)
			}
			return a
		}
	}
	field := func(name string) func(b reflect.Value) any {
		return func(b reflect.Value) any { return b.FieldByName(name).Interface() }
	}
	return []knob{
		{"kafka.brokers", []string{"k1:1", "k2:2"}, "STREAMSCORE_BROKERS", "k1:1,k2:2",
			func(_ *testing.T, c *Compiled) any { return c.Kafka.Brokers }, []string{"k1:1", "k2:2"}},
		{"kafka.client_id", "cid", "", "", func(_ *testing.T, c *Compiled) any { return c.Kafka.ClientID }, "cid"},
		{"kafka.tls.enabled", true, "", "", func(_ *testing.T, c *Compiled) any { return c.Kafka.TLS.Enabled }, true},
		{"kafka.tls.ca_file", "/ca.pem", "", "", func(_ *testing.T, c *Compiled) any { return c.Kafka.TLS.CAFile }, "/ca.pem"},
		{"kafka.tls.cert_file", "/c.pem", "", "", func(_ *testing.T, c *Compiled) any { return c.Kafka.TLS.CertFile }, "/c.pem"},
		{"kafka.tls.key_file", "/k.pem", "", "", func(_ *testing.T, c *Compiled) any { return c.Kafka.TLS.KeyFile }, "/k.pem"},
		{"kafka.tls.insecure_skip_verify", true, "", "", func(_ *testing.T, c *Compiled) any { return c.Kafka.TLS.InsecureSkipVerify }, true},
		{"kafka.sasl.mechanism", "scram-sha-512", "", "", func(_ *testing.T, c *Compiled) any { return c.Kafka.SASL.Mechanism }, "scram-sha-512"},
		{"kafka.sasl.username", "u", "STREAMSCORE_SASL_USERNAME", "u", func(_ *testing.T, c *Compiled) any { return c.Kafka.SASL.Username }, "u"},
		{"kafka.sasl.password", "p", "STREAMSCORE_SASL_PASSWORD", "p", func(_ *testing.T, c *Compiled) any { return c.Kafka.SASL.Password }, "p"},
		{"kafka.sasl.password_file", knobPasswordFile, "STREAMSCORE_SASL_PASSWORD_FILE", knobPasswordFile,
			func(_ *testing.T, c *Compiled) any { return c.Kafka.SASL.Password }, "from-a-file"},
		{"kafka.failover_timeout", "95s", "STREAMSCORE_KAFKA_FAILOVER_TIMEOUT", "95s",
			func(_ *testing.T, c *Compiled) any { return c.Kafka.Failover() }, 95 * time.Second},
		{"group", "g2", "STREAMSCORE_GROUP", "g2", func(_ *testing.T, c *Compiled) any { return c.GroupOptions(nil).Group }, "g2"},
		{"topics.input", []string{"a", "b"}, "STREAMSCORE_INPUT_TOPICS", "a,b", func(_ *testing.T, c *Compiled) any { return c.GroupOptions(nil).Topics }, []string{"a", "b"}},
		{"topics.labels", "lab", "", "", func(_ *testing.T, c *Compiled) any { return c.FeedbackOptions(Bounded).Topic }, "lab"},
		{"topics.predictions", "pr", "", "", func(_ *testing.T, c *Compiled) any { return c.Operator(nil).Topics.Predictions }, "pr"},
		{"topics.alerts", "al", "", "", func(_ *testing.T, c *Compiled) any { return c.Operator(nil).Topics.Alerts }, "al"},
		{"topics.dead_letter", "dl", "", "", func(_ *testing.T, c *Compiled) any { return c.Operator(nil).Topics.DeadLetter }, "dl"},
		{"topics.backfill", "bf", "", "", func(_ *testing.T, c *Compiled) any { return c.BackfillOut() }, "topic:bf"},
		{"topics.create", false, "", "", func(_ *testing.T, c *Compiled) any { _, s := c.OutputTopics(3); return len(s) }, 0},
		{"topics.partitions", 7, "", "", func(_ *testing.T, c *Compiled) any { _, s := c.OutputTopics(3); return s[0].Partitions }, int32(7)},
		{"topics.replication_factor", 3, "", "", func(_ *testing.T, c *Compiled) any { r, _ := c.OutputTopics(3); return r }, int16(3)},
		{"start_at", "latest", "", "", func(_ *testing.T, c *Compiled) any { return c.GroupOptions(nil).StartAt }, "latest"},
		{"session_timeout", "7s", "", "", func(t *testing.T, c *Compiled) any {
			if b, _ := c.BackfillGroupOptions("job", ""); b.SessionTimeout != c.GroupOptions(nil).SessionTimeout {
				t.Fatalf("backfill --group has session timeout %v, run %v", b.SessionTimeout, c.GroupOptions(nil).SessionTimeout)
			}
			return c.GroupOptions(nil).SessionTimeout
		}, 7 * time.Second},
		{"delivery", "exactly-once", "STREAMSCORE_DELIVERY", "exactly-once", func(_ *testing.T, c *Compiled) any { return c.ExactlyOnce() }, true},
		{"transactional_id", "tx1", "STREAMSCORE_TRANSACTIONAL_ID", "tx1", func(t *testing.T, c *Compiled) any {
			o, err := c.TransactOptions(nil)
			if err != nil {
				t.Fatal(err)
			}
			return o.TransactionalID
		}, "tx1"},
		{"instance_id", "pod-0", "STREAMSCORE_INSTANCE_ID", "pod-0", func(t *testing.T, c *Compiled) any {
			// backfill --group without --instance names its process (and its transactional id) by it
			if b, _ := c.BackfillGroupOptions("job", ""); b.InstanceID != c.GroupOptions(nil).InstanceID || (b.InstanceID != "" && b.TransactionalID != "job-"+b.InstanceID) {
				t.Fatalf("backfill --group: instance %q, transactional id %q", b.InstanceID, b.TransactionalID)
			}
			return c.GroupOptions(nil).InstanceID
		}, "pod-0"},
		{"model.path", "/models/other.onnx", "STREAMSCORE_MODEL_PATH", "/models/other.onnx",
			func(_ *testing.T, c *Compiled) any { return c.ModelOptions().Path }, "/models/other.onnx"},
		{"model.max_bytes", 1000, "", "", func(t *testing.T, c *Compiled) any {
			o := c.ModelOptions()
			o.Path = referenceModel
			m, err := scorer.Open(o)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			return c.LiveModels(m).MaxBytes
		}, int64(1000)},
		{"model.max_loaded_bytes", 5000, "", "", func(t *testing.T, c *Compiled) any {
			o := c.ModelOptions()
			o.Path = referenceModel
			m, err := scorer.Open(o)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			return c.LiveModels(m).MaxLoadedBytes
		}, int64(5000)},
		{"registry.enabled", false, "", "", func(_ *testing.T, c *Compiled) any { _, ok := c.RegistryOptions(); return ok }, false},
		{"registry.topic", "reg2", "", "", func(_ *testing.T, c *Compiled) any { o, _ := c.RegistryOptions(); return o.Topic }, "reg2"},
		{"topics.drift", "dr2", "", "", func(_ *testing.T, c *Compiled) any { return c.Operator(nil).Drift.Topic }, "dr2"},
		{"drift.enabled", false, "", "", func(_ *testing.T, c *Compiled) any { return c.Operator(nil).Drift == nil }, true},
		{"drift.window", "15m", "", "", func(_ *testing.T, c *Compiled) any { return c.Operator(nil).Drift.Window }, 15 * time.Minute},
		{"drift.min_count", 42, "", "", func(_ *testing.T, c *Compiled) any { return c.Operator(nil).Drift.MinCount }, int64(42)},
		{"drift.reference", knobReference, "", "", func(_ *testing.T, c *Compiled) any {
			ref := c.Operator(nil).Drift.Reference(fakeVersion("any"))
			if ref == nil {
				return int64(0)
			}
			return ref.Rows
		}, int64(1)},
		{"topics.shadow", "sh2", "", "", func(_ *testing.T, c *Compiled) any { return c.Operator(nil).Topics.Shadow }, "sh2"},
		{"model.name", "m2", "", "", func(_ *testing.T, c *Compiled) any { return c.ModelOptions().Name }, "m2"},
		{"model.device", "cuda", "STREAMSCORE_DEVICE", "cuda", func(_ *testing.T, c *Compiled) any { return string(c.ModelOptions().Device) }, "cuda"},
		{"model.gpu", 2, "", "", func(_ *testing.T, c *Compiled) any { return c.ModelOptions().CUDADevice }, 2},
		{"model.threads", 3, "", "", func(_ *testing.T, c *Compiled) any { return c.ModelOptions().Threads }, 3},
		{"model.input", "in", "", "", func(_ *testing.T, c *Compiled) any { return c.ModelOptions().InputName }, "in"},
		{"model.output", "out", "", "", func(_ *testing.T, c *Compiled) any { return c.ModelOptions().OutputName }, "out"},
		{"threshold", 0.25, "STREAMSCORE_THRESHOLD", "0.25", func(_ *testing.T, c *Compiled) any { return c.Operator(nil).Threshold }, float32(0.25)},
		{"batch.max_size", 512, "STREAMSCORE_BATCH_MAX_SIZE", "512", func(_ *testing.T, c *Compiled) any { return c.Operator(nil).Batch.MaxSize }, 512},
		{"batch.max_wait", "3ms", "STREAMSCORE_BATCH_MAX_WAIT", "3ms", batch(field("MaxWait")), 3 * time.Millisecond},
		{"batch.queue_size", 8192, "STREAMSCORE_BATCH_QUEUE_SIZE", "8192", batch(field("QueueSize")), 8192},
		{"batch.adaptive", true, "STREAMSCORE_BATCH_ADAPTIVE", "true", batch(field("Adaptive")), true},
		{"batch.target_utilisation", 0.5, "STREAMSCORE_BATCH_TARGET_UTILISATION", "0.5", batch(field("TargetUtilisation")), 0.5},
		{"batch.preferred_sizes", []int{32, 256}, "STREAMSCORE_BATCH_PREFERRED_SIZES", "32,256", batch(field("PreferredSizes")), []int{32, 256}},
		{"producer.compression", "zstd", "STREAMSCORE_COMPRESSION", "zstd", func(_ *testing.T, c *Compiled) any { return c.ProducerOptions().Compression }, "zstd"},
		{"producer.linger", "5ms", "", "", func(_ *testing.T, c *Compiled) any { return c.ProducerOptions().Linger }, 5 * time.Millisecond},
		{"commit_interval", "3s", "", "", func(_ *testing.T, c *Compiled) any { return c.Operator(nil).CommitInterval }, 3 * time.Second},
		{"drain_timeout", "4s", "", "", func(_ *testing.T, c *Compiled) any { return c.Operator(nil).DrainTimeout }, 4 * time.Second},
		{"metrics.address", "127.0.0.1:9999", "STREAMSCORE_METRICS_ADDRESS", "127.0.0.1:9999", func(_ *testing.T, c *Compiled) any { return c.MetricsOptions().Address }, "127.0.0.1:9999"},
		{"metrics.pprof", true, "STREAMSCORE_METRICS_PPROF", "true", func(_ *testing.T, c *Compiled) any { return c.MetricsOptions().PProf }, true},
		{"http.address", "127.0.0.1:8081", "STREAMSCORE_HTTP_ADDRESS", "127.0.0.1:8081", func(_ *testing.T, c *Compiled) any { o, _ := c.HTTPOptions(); return o.Address }, "127.0.0.1:8081"},
		{"http.max_body_bytes", "2MiB", "", "", func(_ *testing.T, c *Compiled) any { o, _ := c.HTTPOptions(); return o.MaxBodyBytes }, int64(2 << 20)},
		{"http.max_in_flight", 7, "", "", func(_ *testing.T, c *Compiled) any { o, _ := c.HTTPOptions(); return o.MaxInFlight }, 7},
		{"http.read_timeout", "3s", "", "", func(_ *testing.T, c *Compiled) any { o, _ := c.HTTPOptions(); return o.ReadTimeout }, 3 * time.Second},
		{"http.request_timeout", "4s", "", "", func(_ *testing.T, c *Compiled) any { o, _ := c.HTTPOptions(); return o.RequestTimeout }, 4 * time.Second},
		{"http.drain_timeout", "6s", "", "", func(_ *testing.T, c *Compiled) any { o, _ := c.HTTPOptions(); return o.DrainTimeout }, 6 * time.Second},
		{"log.level", "debug", "STREAMSCORE_LOG_LEVEL", "debug", func(t *testing.T, c *Compiled) any {
			l, err := c.Log.NewLogger()
			if err != nil {
				t.Fatal(err)
			}
			return l.Core().Enabled(zapcore.DebugLevel)
		}, true},
		{"log.format", "yaml", "", "", nil, nil}, // an invalid format: see TestLogFormatIsChecked
		{"include_features", true, "", "", func(_ *testing.T, c *Compiled) any { return c.Operator(nil).IncludeFeatures }, true},
		{"explain.enabled", false, "", "", func(_ *testing.T, c *Compiled) any { return c.Operator(nil).Explain.Enabled }, false},
		{"explain.top_k", 3, "", "", func(_ *testing.T, c *Compiled) any { return c.Operator(nil).Explain.TopK }, 3},
		{"memory_limit", "300MiB", "", "", func(t *testing.T, c *Compiled) any {
			prev := debug.SetMemoryLimit(-1)
			t.Cleanup(func() { debug.SetMemoryLimit(prev) })
			t.Setenv("GOMEMLIMIT", "")
			os.Unsetenv("GOMEMLIMIT")
			if err := c.ApplyMemoryLimit(); err != nil {
				t.Fatal(err)
			}
			return debug.SetMemoryLimit(-1)
		}, int64(300 << 20)},
		{"schema.max_bytes", 1000, "", "", func(_ *testing.T, c *Compiled) any { return c.Schema.MaxBytes }, 1000},
		{"feedback.idle_timeout", "3s", "", "", func(_ *testing.T, c *Compiled) any { return c.Features.Feedback.IdleTimeout }, 3 * time.Second},
		{"features", []any{map[string]any{"name": "A", "field": "tx_amount"}}, "", "", func(_ *testing.T, c *Compiled) any { return c.Features.Names() }, []string{"A"}},
		{"tables", []any{merchantsTable()}, "", "", func(_ *testing.T, c *Compiled) any {
			var names []string
			for _, tc := range c.Features.Tables {
				names = append(names, tc.Name+"@"+tc.Topic)
			}
			return names
		}, []string{"merchants@merchants"}},
		// schema_registry (schemaregistry.go): read back from the registry client's options
		{"schema_registry.url", "http://sr:8081", "", "", func(_ *testing.T, c *Compiled) any { return c.SchemaRegistryOptions().URL }, "http://sr:8081"},
		{"schema_registry.tls.enabled", true, "", "", func(_ *testing.T, c *Compiled) any { return c.SchemaRegistryOptions().TLS.Enabled }, true},
		{"schema_registry.tls.ca_file", "/ca.pem", "", "", func(_ *testing.T, c *Compiled) any { return c.SchemaRegistryOptions().TLS.CAFile }, "/ca.pem"},
		{"schema_registry.tls.cert_file", "/c.pem", "", "", func(_ *testing.T, c *Compiled) any { return c.SchemaRegistryOptions().TLS.CertFile }, "/c.pem"},
		{"schema_registry.tls.key_file", "/k.pem", "", "", func(_ *testing.T, c *Compiled) any { return c.SchemaRegistryOptions().TLS.KeyFile }, "/k.pem"},
		{"schema_registry.tls.insecure_skip_verify", true, "", "", func(_ *testing.T, c *Compiled) any { return c.SchemaRegistryOptions().TLS.InsecureSkipVerify }, true},
		{"schema_registry.username", "u", "", "", func(_ *testing.T, c *Compiled) any { return c.SchemaRegistryOptions().Username }, "u"},
		{"schema_registry.password", "p", "", "", func(_ *testing.T, c *Compiled) any { return c.SchemaRegistryOptions().Password }, "p"},
		{"schema_registry.password_file", knobPasswordFile, "", "", func(_ *testing.T, c *Compiled) any { return c.SchemaRegistryOptions().Password }, "from-a-file"},
		{"output.format", "avro", "", "", nil, nil}, // needs schema_registry.url as well: see TestOutputFormat
		{"schema_registry.timeout", "3s", "", "", func(_ *testing.T, c *Compiled) any { return c.SchemaRegistryOptions().Timeout }, 3 * time.Second},
	}
}

// withKey loads the reference config as a YAML tree and sets the dotted key to v.
func withKey(t *testing.T, key string, v any) string {
	t.Helper()
	raw, err := os.ReadFile(referenceConfig)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	m := doc
	parts := strings.Split(key, ".")
	for _, p := range parts[:len(parts)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	m[parts[len(parts)-1]] = v
	// The file is read at validation: keep a relative drift.reference pointing where the
	// reference config's does.
	if d, ok := doc["drift"].(map[string]any); ok {
		if p, ok := d["reference"].(string); ok && !filepath.IsAbs(p) {
			d["reference"] = filepath.Join(filepath.Dir(referenceConfig), p)
			if abs, err := filepath.Abs(d["reference"].(string)); err == nil {
				d["reference"] = abs
			}
		}
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	// Keep the file beside the reference one, so that relative paths resolve the same way.
	path := filepath.Join(t.TempDir(), "streamscore.yaml")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func noEnv(string) (string, bool) { return "", false }

// knobReference is a one-row drift reference of the reference config's features, for
// drift.reference (absolute: the knob's config file lives in a temporary folder).
var knobReference = func() string {
	p, err := filepath.Abs("testdata/reference-knob.json")
	if err != nil {
		panic(err)
	}
	return p
}()

// knobPasswordFile holds "from-a-file" and a final newline, as a mounted Secret would
// (absolute: the knob's config file lives in a temporary folder).
var knobPasswordFile = func() string {
	p, err := filepath.Abs("testdata/sasl-password.txt")
	if err != nil {
		panic(err)
	}
	return p
}()

// fakeVersion is a pipeline.Scorer that only has a version.
type fakeVersion string

func (fakeVersion) Score([]float32, int, []float32, []float32) ([]float32, error) { return nil, nil }
func (fakeVersion) NumFeatures() int                                              { return 15 }
func (fakeVersion) Name() string                                                  { return "fraud" }
func (v fakeVersion) Version() string                                             { return string(v) }

func compile(t *testing.T, path string, lookup func(string) (string, bool)) *Compiled {
	t.Helper()
	c, err := LoadWith(path, lookup)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := c.Validate(Needs{Kafka: true})
	if err != nil {
		t.Fatal(err)
	}
	return cc
}

// TestEveryKnobReachesItsComponent sets each documented key in the file, and each
// variable in the environment, and reads it back from the options that the component
// receives. A key that is parsed but copied to nothing fails here.
func TestEveryKnobReachesItsComponent(t *testing.T) {
	for _, k := range knobs() {
		if k.probe == nil {
			continue
		}
		t.Run("yaml/"+k.key, func(t *testing.T) {
			cc := compile(t, withKey(t, k.key, k.yaml), noEnv)
			if got := k.probe(t, cc); !reflect.DeepEqual(got, k.want) {
				t.Fatalf("%s: %v (%T) in the file reached the component as %v (%T)", k.key, k.yaml, k.yaml, got, got)
			}
			base := compile(t, referenceConfig, noEnv)
			if got := k.probe(t, base); reflect.DeepEqual(got, k.want) {
				t.Fatalf("%s: the reference config already gives %v: pick another test value", k.key, got)
			}
		})
		if k.env == "" {
			continue
		}
		t.Run("env/"+k.env, func(t *testing.T) {
			lookup := func(name string) (string, bool) {
				if name == k.env {
					return k.envV, true
				}
				return "", false
			}
			cc := compile(t, referenceConfig, lookup)
			if got := k.probe(t, cc); !reflect.DeepEqual(got, k.want) {
				t.Fatalf("%s=%s reached the component as %v", k.env, k.envV, got)
			}
		})
	}
}

// TestEveryKnobIsCovered fails when a YAML key or a STREAMSCORE_* variable is added
// without a row in knobs(): a new knob must prove it reaches its component.
func TestEveryKnobIsCovered(t *testing.T) {
	keys := map[string]bool{}
	envs := map[string]bool{}
	for _, k := range knobs() {
		keys[k.key] = true
		if k.env != "" {
			envs[k.env] = true
		}
	}
	// schema, feedback and features are compiled as wholes into Compiled.Schema and
	// Compiled.Features; one key of each stands for the block here, and pipeline's own
	// tests cover their fields.
	covered := func(key string) bool {
		for _, block := range []string{"schema", "feedback"} {
			if key == block || strings.HasPrefix(key, block+".") {
				return keys[block+".max_bytes"] || keys[block+".idle_timeout"]
			}
		}
		return keys[key]
	}
	for _, key := range yamlKeys(reflect.TypeOf(Config{}), "") {
		if !covered(key) {
			t.Errorf("config key %s has no row in knobs(): add one that reads it back from its component", key)
		}
	}
	for _, e := range EnvVars() {
		if !envs[e.Name] {
			t.Errorf("%s has no row in knobs()", e.Name)
		}
		if !keys[e.Key] {
			t.Errorf("%s says it sets %s, which knobs() does not know", e.Name, e.Key)
		}
	}
}

// yamlKeys lists the dotted YAML keys of t's leaves; pipeline's types are one key each.
func yamlKeys(t reflect.Type, prefix string) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if tag == "" || tag == "-" {
			continue
		}
		key := prefix + tag
		ft := f.Type
		if ft.Kind() == reflect.Struct && ft.PkgPath() != "github.com/streamscore/streamscore/pipeline" && ft != reflect.TypeOf(time.Duration(0)) {
			out = append(out, yamlKeys(ft, key+".")...)
			continue
		}
		out = append(out, key)
	}
	slices.Sort(out)
	return out
}

func TestLogFormatIsChecked(t *testing.T) {
	_, err := LogConfig{Level: "info", Format: "yaml"}.NewLogger()
	if err == nil || !strings.Contains(err.Error(), "want json or console") {
		t.Fatalf("log.format yaml: %v", err)
	}
}

// TestValidateSaysWhatToFix: every problem of a config is reported at once, each naming
// its key and what to do.
func TestValidateSaysWhatToFix(t *testing.T) {
	c, err := LoadWith(referenceConfig, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	c.Topics.Input = nil
	c.Delivery = "twice"
	c.Threshold = 2
	c.Batch.TargetUtilisation = 3
	c.Producer.Compression = "brotli"
	c.Model.Path = ""
	c.Kafka.FailoverTimeout = 0
	c.Model.MaxLoadedBytes = -1
	c.Explain.TopK = 0
	_, err = c.Validate(Needs{Kafka: true, Model: true})
	if err == nil {
		t.Fatal("an invalid config validated")
	}
	for _, want := range []string{"topics.input", "delivery \"twice\"", "threshold 2", "target_utilisation", "producer.compression \"brotli\"", "model.path: point it at the .onnx file", "kafka.failover_timeout 0s: want a duration above 0", "model.max_loaded_bytes -1: want 0", "explain.top_k 0: want at least 1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
}

func TestBatchJobBatcherKeepsTheKnobs(t *testing.T) {
	cc := compile(t, referenceConfig, func(name string) (string, bool) {
		v, ok := map[string]string{"STREAMSCORE_BATCH_ADAPTIVE": "true", "STREAMSCORE_BATCH_PREFERRED_SIZES": "7,64"}[name]
		return v, ok
	})
	bc, err := cc.BatchJobBatcher(256)
	if err != nil {
		t.Fatal(err)
	}
	if bc.MaxSize != 256 || !bc.Adaptive || !slices.Equal(bc.PreferredSizes, []int{7, 64}) {
		t.Fatalf("batch job batcher %+v", bc)
	}
	if _, err := cc.BatchJobBatcher(32); err == nil || !strings.Contains(err.Error(), "batch size 32") {
		t.Fatalf("preferred size 64 above a batch size of 32: %v", err)
	}
}
