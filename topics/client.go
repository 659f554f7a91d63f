// Package topics owns all Kafka I/O: client options (TLS, SASL), the consumer-group source
// of live scoring, the bounded replay source of backfills, the producer sink, topic
// administration and header conventions. It is the only package that imports franz-go
// (kfake aside). Its sources and sinks implement the interfaces the pipeline package
// defines, so the operator never sees a Kafka type.
package topics

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"github.com/twmb/franz-go/plugin/kprom"
	"github.com/twmb/franz-go/plugin/kzap"
	"go.uber.org/zap"
)

// TLSConfig enables TLS to the brokers.
type TLSConfig struct {
	Enabled            bool   `yaml:"enabled"`
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// SASLConfig enables SASL authentication.
type SASLConfig struct {
	Mechanism string `yaml:"mechanism"` // plain, scram-sha-256 or scram-sha-512
	Username  string `yaml:"username"`
	Password  string `yaml:"password"`
	// PasswordFile holds the password instead (e.g. a mounted Kubernetes Secret); the
	// config package reads it into Password when it loads the config.
	PasswordFile string `yaml:"password_file"`
}

// String never shows the password, so that printing a config with %v or %+v is safe.
func (s SASLConfig) String() string {
	shown := "none"
	if s.Password != "" {
		shown = "<redacted>"
	}
	return fmt.Sprintf("{mechanism:%s username:%s password:%s password_file:%s}", s.Mechanism, s.Username, shown, s.PasswordFile)
}

// GoString is String, for %#v.
func (s SASLConfig) GoString() string { return s.String() }

// ClientConfig is what every Kafka client of streamscore shares.
type ClientConfig struct {
	Brokers  []string   `yaml:"brokers"`
	ClientID string     `yaml:"client_id"`
	TLS      TLSConfig  `yaml:"tls"`
	SASL     SASLConfig `yaml:"sasl"`
	// FailoverTimeout bounds every wait for the cluster to recover from a broker failure:
	// franz-go's retries of one request, and the retries of the start-up steps and of the
	// live job's restarts (0: DefaultFailoverTimeout). Keep it well above the time a
	// failover takes (KRaft: broker.session.timeout.ms, 9s, plus a metadata refresh).
	FailoverTimeout time.Duration `yaml:"failover_timeout"`

	// Logger receives franz-go's logs (warnings and above). Nil: none.
	Logger *zap.Logger `yaml:"-"`
	// Metrics, when set, instruments the client (kprom: connections, bytes, batches).
	Metrics *ClientMetrics `yaml:"-"`
}

// DefaultFailoverTimeout is kafka.failover_timeout's default: several KRaft failovers
// (broker.session.timeout.ms 9s, then a metadata refresh) and a coordinator move.
const DefaultFailoverTimeout = time.Minute

// Failover is FailoverTimeout, or its default when unset.
func (c *ClientConfig) Failover() time.Duration {
	if c.FailoverTimeout <= 0 {
		return DefaultFailoverTimeout
	}
	return c.FailoverTimeout
}

// ClientMetrics instruments the consumer and the producer of one job with franz-go's kprom
// plugin, as streamscore_kafka_consumer_* and streamscore_kafka_producer_*. A kprom.Metrics
// must not be shared between clients (it is re-initialised per client), so each role gets
// its own, once; admin and reader clients are not instrumented.
type ClientMetrics struct {
	reg  prometheus.Registerer
	mu   sync.Mutex
	used map[string]bool
}

// NewClientMetrics prepares client metrics on reg.
func NewClientMetrics(reg prometheus.Registerer) *ClientMetrics {
	return &ClientMetrics{reg: reg, used: map[string]bool{}}
}

func (m *ClientMetrics) hook(role string) []kgo.Hook {
	if m == nil || (role != "consumer" && role != "producer") {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.used[role] {
		return nil
	}
	m.used[role] = true
	// kprom unregisters its collectors when its client closes; the role is free again
	// then, so a live job that reopens its clients after a failure keeps its metrics.
	return []kgo.Hook{
		kprom.NewMetrics("streamscore_kafka", kprom.Subsystem(role), kprom.Registerer(m.reg)),
		releaseRole{m, role},
	}
}

// releaseRole frees a role of ClientMetrics when its client closes (after kprom's own
// OnClientClosed, which comes first in the hooks).
type releaseRole struct {
	m    *ClientMetrics
	role string
}

func (r releaseRole) OnClientClosed(*kgo.Client) {
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	delete(r.m.used, r.role)
}

// Validate says what to fix.
func (c *ClientConfig) Validate() error {
	if len(c.Brokers) == 0 {
		return errors.New("kafka: no brokers (set brokers in the config, --brokers or STREAMSCORE_BROKERS)")
	}
	for _, b := range c.Brokers {
		if b == "" || !strings.Contains(b, ":") {
			return fmt.Errorf("kafka: broker %q: want host:port", b)
		}
	}
	switch strings.ToLower(c.SASL.Mechanism) {
	case "", "plain", "scram-sha-256", "scram-sha-512":
	default:
		return fmt.Errorf("kafka: sasl mechanism %q: want plain, scram-sha-256 or scram-sha-512", c.SASL.Mechanism)
	}
	return nil
}

// connOpts are the options that decide whether a connection succeeds: the brokers and
// SASL, and the TLS config to dial with (nil: plaintext), which the caller installs.
func (c *ClientConfig) connOpts(role string) ([]kgo.Opt, *tls.Config, error) {
	if err := c.Validate(); err != nil {
		return nil, nil, err
	}
	id := c.ClientID
	if id == "" {
		id = "streamscore"
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.ClientID(id + "-" + role),
	}
	var tc *tls.Config
	if c.TLS.Enabled {
		var err error
		if tc, err = c.TLS.build(); err != nil {
			return nil, nil, err
		}
	}
	switch strings.ToLower(c.SASL.Mechanism) {
	case "plain":
		opts = append(opts, kgo.SASL(plain.Auth{User: c.SASL.Username, Pass: c.SASL.Password}.AsMechanism()))
	case "scram-sha-256":
		opts = append(opts, kgo.SASL(scram.Auth{User: c.SASL.Username, Pass: c.SASL.Password}.AsSha256Mechanism()))
	case "scram-sha-512":
		opts = append(opts, kgo.SASL(scram.Auth{User: c.SASL.Username, Pass: c.SASL.Password}.AsSha512Mechanism()))
	}
	return opts, tc, nil
}

// opts are the options of every client of this package. Building them runs the startup
// check (once per connection settings, see Check), so that every command fails within
// seconds, saying what to fix, when the brokers cannot be reached or refuse it.
func (c *ClientConfig) opts(role string) ([]kgo.Opt, error) {
	opts, tc, err := c.connOpts(role)
	if err != nil {
		return nil, err
	}
	if err := c.checkOnce(); err != nil {
		return nil, err
	}
	if tc != nil {
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if c.Logger != nil {
		opts = append(opts, kgo.WithLogger(kzap.New(c.Logger.Named("kafka").With(zap.String("client", role)), kzap.Level(kgo.LogLevelWarn))))
	}
	if h := c.Metrics.hook(role); h != nil {
		opts = append(opts, kgo.WithHooks(h...))
	}
	// No incremental fetch sessions (KIP-227): franz-go 1.22 reads a source's session id
	// without a lock when the client closes, while a fetch still in flight may bump it (the
	// race detector caught it in CI, closing a Reader on the embedded broker). A session
	// only saves resending the partition list in each fetch, and streamscore's clients
	// fetch a few partitions per broker.
	opts = append(opts, kgo.DisableFetchSessions())
	return append(opts, c.retryOpts(0)...), nil
}

// retryOpts make franz-go retry a request for as long as a failover may take, instead of
// its defaults (30s, 20 tries with a backoff growing to 5s), which end before a KRaft
// leader move in the worst case (seen: 6s of retries against 9s). Group membership
// requests keep franz-go's bound, the session timeout (session; 0: franz-go's 45s): a
// member that cannot heartbeat for that long is out of the group anyway. RetryTimeout
// does not cover fetches and produces; producing is bounded by RecordDeliveryTimeout.
func (c *ClientConfig) retryOpts(session time.Duration) []kgo.Opt {
	failover := c.Failover()
	if session <= 0 {
		session = 45 * time.Second
	}
	return []kgo.Opt{
		kgo.RetryTimeoutFn(func(key int16) time.Duration {
			switch key {
			case (*kmsg.JoinGroupRequest)(nil).Key(), (*kmsg.SyncGroupRequest)(nil).Key(),
				(*kmsg.HeartbeatRequest)(nil).Key(), (*kmsg.ConsumerGroupHeartbeatRequest)(nil).Key():
				return session
			}
			return failover
		}),
		kgo.RetryBackoffFn(retryBackoff),
		// the retry timeout is the bound, not the count: enough tries to fill it at the
		// backoff's floor
		kgo.RequestRetries(int(failover/retryBackoffMin) + 1),
		// A request sharded by leader (ListOffsets: the labels topic's and the registry's
		// end offsets) that fails to dial a dead leader does not refresh the metadata, and
		// franz-go's default refreshes it every 5 minutes: the fault soak saw instances ask
		// a killed broker for 4 minutes after its partitions had moved. A refresh at
		// least every 10 s follows a failover within a session timeout.
		kgo.MetadataMaxAge(metadataMaxAge),
	}
}

// metadataMaxAge is how old the client's metadata may get before it is asked again.
const metadataMaxAge = 10 * time.Second

const (
	retryBackoffMin = 100 * time.Millisecond
	retryBackoffMax = 2 * time.Second
)

// retryBackoff is the wait before try n+1 (n from 1): 100ms doubling to 2s, with up to
// 20% jitter so that clients restarted together do not retry in step. The cap is below
// franz-go's 5s so that a recovered cluster is noticed soon after a failover.
func retryBackoff(n int) time.Duration {
	d := min(retryBackoffMin<<min(max(n-1, 0), 5), retryBackoffMax)
	return d - time.Duration(rand.Int64N(int64(d)/5+1))
}

func (t TLSConfig) build() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // opt-in for test clusters, documented
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("kafka tls: reading ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka tls: ca_file %s holds no PEM certificate", t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" || t.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("kafka tls: loading client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// Producer is the sink of live scoring and topic backfills. It implements pipeline.Sink.
// Produce is safe for concurrent use; it blocks when MaxBuffered records are waiting for
// acknowledgement, which is how a slow broker pushes back on the operator.
type Producer struct {
	cl   *kgo.Client
	acks inflight
}

// ProducerOptions tunes the producer.
type ProducerOptions struct {
	// Linger is how long a partition's batch waits for more records. The default, 0,
	// adds no latency: records still batch up while a produce request is in flight, so
	// batches grow by themselves under load.
	Linger      time.Duration
	MaxBuffered int // records awaiting ack before Produce blocks; default 100000
	// Compression of produced batches: lz4 (default), snappy, zstd, gzip or none.
	Compression string
	// DeliveryTimeout fails a record that cannot be written for this long, which stops the
	// operator rather than retrying forever (default 2m; 0 keeps the default, -1 disables).
	DeliveryTimeout time.Duration
}

// maxBatchBytes is the producer's largest batch, hence its largest record: a topic's
// max.message.bytes must be at least this, or a full batch is refused (MESSAGE_TOO_LARGE).
const maxBatchBytes = 1 << 20

// NewProducer connects a producer: idempotent, acks=all, lz4, key-hash partitioning
// compatible with the Java client (murmur2), so an output lands on the partition a Java
// producer would pick for its key.
func NewProducer(cc ClientConfig, po ProducerOptions) (*Producer, error) {
	opts, err := cc.opts("producer")
	if err != nil {
		return nil, err
	}
	if po.MaxBuffered <= 0 {
		po.MaxBuffered = 100_000
	}
	if po.DeliveryTimeout == 0 {
		po.DeliveryTimeout = 2 * time.Minute
	}
	opts = append(opts,
		kgo.ProducerLinger(po.Linger),
		kgo.MaxBufferedRecords(po.MaxBuffered),
		kgo.ProducerBatchMaxBytes(maxBatchBytes),
	)
	codec, err := compression(po.Compression)
	if err != nil {
		return nil, err
	}
	opts = append(opts, kgo.ProducerBatchCompression(codec, kgo.NoCompression()))
	if po.DeliveryTimeout > 0 {
		opts = append(opts, kgo.RecordDeliveryTimeout(po.DeliveryTimeout))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("creating producer: %w", err)
	}
	return &Producer{cl: cl}, nil
}

func compression(name string) (kgo.CompressionCodec, error) {
	switch name {
	case "", "lz4":
		return kgo.Lz4Compression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "none":
		return kgo.NoCompression(), nil
	}
	return kgo.NoCompression(), fmt.Errorf("producer compression %q: want lz4, snappy, zstd, gzip or none", name)
}

// ProduceRaw writes one record and calls ack with the result: nil, or a
// *record.WriteError.
func (p *Producer) ProduceRaw(topic string, key, value []byte, headers map[string]string, ack func(error)) {
	r := &kgo.Record{Topic: topic, Key: key, Value: value}
	for k, v := range headers {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	p.acks.produce(p.cl.Produce, r, ack)
}

// Flush waits until everything produced so far is acknowledged, refused records included.
func (p *Producer) Flush(ctx context.Context) error {
	if err := p.cl.Flush(ctx); err != nil {
		return err
	}
	return p.acks.wait(ctx)
}

// Close flushes nothing: call Flush first.
func (p *Producer) Close() { p.cl.Close() }
