// Package testenv is what the integration tests share: the Apache Kafka brokers of
// `make test`, read from the environment in one place; topic, group and transactional
// names unique to a test, from one scheme; and Eventually, the one way a test waits for a
// condition. Test code only.
//
// Tests that need a real broker, start subprocesses or run faults on Apache Kafka are
// built only with the integration tag (`go test -tags integration`); Integration says
// which tier this binary is, for helpers shared by both.
package testenv

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"
)

// BrokersVar names the environment variable with the single test broker's addresses
// (comma-separated); `make test` sets it.
const BrokersVar = "STREAMSCORE_TEST_BROKERS"

// Brokers returns the Apache Kafka brokers of the integration tier. It fails the test
// when they are not set: an integration build without a broker is a mistake, not a skip.
func Brokers(t testing.TB) []string {
	t.Helper()
	v := os.Getenv(BrokersVar)
	if v == "" {
		t.Fatalf("integration test needs a real Apache Kafka broker: set %s (make test does), or run the fast tier without -tags integration", BrokersVar)
	}
	return SplitList(v)
}

// SplitList splits a comma-separated list, dropping empty items and spaces.
func SplitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Name is a topic, group or transactional id of kind that no other test, run or
// concurrent suite uses: kind, the test's name in Kafka's alphabet, and a random suffix.
func Name(t testing.TB, kind string) string {
	t.Helper()
	id := strings.ToLower(strings.NewReplacer("/", "-", "_", "-", " ", "-").Replace(t.Name()))
	if len(id) > 150 { // Kafka allows 249 characters
		id = id[:150]
	}
	return fmt.Sprintf("%s-%s-%08x", kind, id, rand.Uint32())
}

// Eventually calls cond every poll interval until it returns nil, and fails the test with
// cond's last error if timeout passes first. It must be called from the test goroutine.
// The timeout only catches a condition that never comes: it is never a verdict on speed.
func Eventually(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	if err := Poll(timeout, cond); err != nil {
		t.Fatal(err)
	}
}

// Poll is Eventually for a goroutine that is not the test's: it returns, instead of
// failing the test, the error saying how long it waited and cond's last error.
func Poll(timeout time.Duration, cond func() error) error {
	const interval = 20 * time.Millisecond
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("condition not met within %v: %w", timeout, err)
		}
		time.Sleep(interval) // polling a condition with a deadline, not a barrier
	}
}
