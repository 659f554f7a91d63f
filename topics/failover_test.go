package topics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// TestWithinFailoverRetriesUntilTheBrokerAnswers: refused connections are retried until
// the step succeeds.
func TestWithinFailoverRetriesUntilTheBrokerAnswers(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	calls := 0
	err := WithinFailover(t.Context(), ClientConfig{FailoverTimeout: time.Minute}, "listing", func(context.Context) error {
		calls++
		if calls < 4 {
			return refused
		}
		return nil
	})
	if err != nil || calls != 4 {
		t.Fatalf("after %d calls: %v; want success on the 4th", calls, err)
	}
}

// TestWithinFailoverGivesUpNamingTheSetting: a step that keeps failing ends after the
// failover timeout with what was being done, the setting and the last cause.
func TestWithinFailoverGivesUpNamingTheSetting(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	calls := 0
	err := WithinFailover(t.Context(), ClientConfig{FailoverTimeout: 300 * time.Millisecond}, "feedback topic l: listing start offsets",
		func(ctx context.Context) error {
			calls++
			if calls == 3 {
				// a try that hangs until the timeout: the cause reported must still be
				// the refusal, not the timeout
				<-ctx.Done()
				return ctx.Err()
			}
			return refused
		})
	var gave *GaveUpError
	if !errors.As(err, &gave) || !errors.Is(err, syscall.ECONNREFUSED) ||
		!strings.Contains(err.Error(), "feedback topic l: listing start offsets: gave up after 300ms (kafka.failover_timeout): dial tcp: connection refused") {
		t.Fatalf("giving up: %v", err)
	}
}

// TestWithinFailoverStopsAtPermanentErrors: waiting does not create a topic or grant an
// ACL: those fail at once, as does a canceled caller.
func TestWithinFailoverStopsAtPermanentErrors(t *testing.T) {
	for _, perm := range []error{
		fmt.Errorf("%w: t", ErrNoTopic),
		kerr.TopicAuthorizationFailed,
		permanent{errors.New("topic has 3 partitions")},
	} {
		calls := 0
		err := WithinFailover(t.Context(), ClientConfig{FailoverTimeout: 2 * time.Second}, "step", func(context.Context) error {
			calls++
			return perm
		})
		if calls != 1 || !errors.Is(err, perm) {
			t.Errorf("%v: %d calls, %v; want one call and the error", perm, calls, err)
		}
	}
	if Permanent(kerr.InvalidReplicationFactor) || Permanent(kerr.NotLeaderForPartition) || Permanent(context.DeadlineExceeded) {
		t.Error("a broker down or a moving leader counted as permanent")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	calls := 0
	err := WithinFailover(ctx, ClientConfig{FailoverTimeout: 2 * time.Second}, "step", func(context.Context) error {
		calls++
		return errors.New("refused")
	})
	if calls != 1 || err == nil {
		t.Fatalf("canceled caller: %d calls, %v", calls, err)
	}
}
