//go:build integration

package drivers

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/streamscore/streamscore/internal/testpki"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/topics"
)

// secureKafka is the SASL_SSL (SCRAM-SHA-512) listener of make test's broker, or skips.
func secureKafka(t *testing.T) topics.ClientConfig {
	t.Helper()
	brokers := os.Getenv("STREAMSCORE_TEST_SECURE_BROKERS")
	ca := os.Getenv("STREAMSCORE_TEST_TLS_CA_FILE")
	user := os.Getenv("STREAMSCORE_TEST_SASL_USERNAME")
	pass := os.Getenv("STREAMSCORE_TEST_SASL_PASSWORD")
	if brokers == "" || ca == "" || user == "" || pass == "" {
		t.Skip("SKIPPED: needs Apache Kafka's SASL_SSL listener: set STREAMSCORE_TEST_SECURE_BROKERS, STREAMSCORE_TEST_TLS_CA_FILE, " +
			"STREAMSCORE_TEST_SASL_USERNAME and STREAMSCORE_TEST_SASL_PASSWORD (KAFKA_SECURE=1 scripts/kafka.sh start; make test does)")
	}
	return topics.ClientConfig{
		Brokers: config.SplitList(brokers),
		TLS:     topics.TLSConfig{Enabled: true, CAFile: ca},
		SASL:    topics.SASLConfig{Mechanism: "scram-sha-512", Username: user, Password: pass},
	}
}

// secureConfig is testConfig on the SASL_SSL listener.
func secureConfig(t *testing.T, kc topics.ClientConfig) *config.Config {
	t.Helper()
	c := testConfig(t, kc.Brokers)
	c.Kafka.TLS, c.Kafka.SASL = kc.TLS, kc.SASL
	return c
}

// TestIntegrationSecure: live scoring over SASL_SSL with SCRAM-SHA-512 on Apache Kafka
// scores every event; a wrong password, a CA that did not sign the broker's certificate
// and a plaintext client on the TLS port each stop the job at start-up, within seconds,
// with a message that names the cause and the setting to fix. (Without the start-up check
// the job's first admin request already failed fast, in franz-go's words; its producer and
// consumer retried the same failures until their context ended, saying only "context
// deadline exceeded".)
func TestIntegrationSecure(t *testing.T) {
	kc := secureKafka(t)
	waitBound(t)
	t.Run("scores over SASL_SSL", func(t *testing.T) {
		c := secureConfig(t, kc)
		createInputTopics(t, c, 3)
		job := startLive(t, c, nil)
		res := produceT(t, c, 3000, 0.01, 61)
		awaitScored(t, c, res.Events)
		if err := job.stop(); err != nil {
			t.Fatal(err)
		}
		s := finalOutputs(t, c).Counts()
		report(t, "SASL_SSL + SCRAM-SHA-512: events %d: predictions %d, dead letters %d (injected %d), duplicates %d",
			res.Events, s.Predictions, s.DeadLettered, res.Bad, s.Duplicates)
		if s.Predictions+s.DeadLettered != res.Events || s.DeadLettered != res.Bad || s.Duplicates != 0 {
			t.Fatalf("outputs do not match the input: %+v, bad injected %d", s, res.Bad)
		}
	})
	unknownCA := writeUnrelatedCA(t)
	cases := []struct {
		name   string
		change func(c *config.Config)
		wants  []string
	}{
		{"wrong password", func(c *config.Config) { c.Kafka.SASL.Password += "-wrong" },
			[]string{"SASL authentication as \"" + kc.SASL.Username + "\" failed (SCRAM-SHA-512)", "kafka.sasl.password"}},
		{"unknown CA", func(c *config.Config) { c.Kafka.TLS.CAFile = unknownCA },
			[]string{"signed by an unknown CA", "set kafka.tls.ca_file"}},
		{"plaintext to the TLS port", func(c *config.Config) { c.Kafka.TLS = topics.TLSConfig{} },
			[]string{"closed the connection on the first request", "set kafka.tls.enabled: true"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := secureConfig(t, kc)
			tc.change(c)
			cc, err := c.Validate(config.Needs{Kafka: true, Model: true})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			start := time.Now()
			l, err := NewLive(ctx, cc, LiveDeps{})
			took := time.Since(start)
			if err == nil {
				l.close()
				t.Fatal("the live job started")
			}
			report(t, "%s: the live job failed after %s: %v", tc.name, took.Round(time.Millisecond), err)
			for _, want := range tc.wants {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the error does not say %q", want)
				}
			}
			// Not a speed measurement: franz-go alone retries for minutes; the check
			// answers within its deadline whatever the machine.
			if took > 2*topics.CheckTimeout {
				t.Errorf("failing took %s: the start-up check should answer within %s", took, topics.CheckTimeout)
			}
		})
	}
}

// writeUnrelatedCA writes a CA certificate that signed nothing of the broker's.
func writeUnrelatedCA(t *testing.T) string {
	t.Helper()
	ca, _ := testpki.NewCA(t, "unrelated CA")
	path := filepath.Join(t.TempDir(), "unrelated-ca.pem")
	testpki.WritePEM(t, path, ca.Raw)
	return path
}
