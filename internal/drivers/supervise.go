package drivers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/streamscore/streamscore/pipeline/record"
	"github.com/streamscore/streamscore/topics"
)

// transient reports whether the operator stopped on an error that reopening its source
// and sink may cure: a broker down or moving, a write that timed out, a producer fenced
// after a rebalance. A failed write says so itself (record.WriteError, classified in
// topics); any other error but a cancellation and one that topics knows to be permanent
// (authorization, configuration, a missing topic) counts as transient, and the
// supervisor's bound, kafka.failover_timeout, turns one that never clears into an exit.
func transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	if we, ok := errors.AsType[*record.WriteError](err); ok {
		return we.Transient
	}
	return !topics.Permanent(err)
}

// restartCause is the cause label of streamscore_operator_restarts_total: few values, so
// that a dashboard can tell a broker that refuses connections from one that is slow.
func restartCause(err error) string {
	var ne *net.OpError
	switch {
	case errors.As(err, &ne):
		return "connection"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	default:
		return "other"
	}
}

// runner is one operator with the clients it reads from and writes to.
type runner interface {
	// Run scores until ctx ends (then drains and returns nil) or a failure.
	Run(ctx context.Context) error
	// Close closes the runner's clients. For exactly-once that is the transactional
	// session: the next one initialises the same transactional id, which fences it and
	// aborts its open transaction, so none of its outputs becomes visible. The
	// supervisor calls Close once, after Run.
	Close()
}

// supervisor runs an operator and, when it stops on a transient error, closes it, waits
// with backoff and runs a new one from the committed offsets (at-least-once: what was
// not committed is scored again; exactly-once: the aborted transaction's outputs are
// never visible). It gives up when failover has passed without progress, naming the
// cause and the setting; a permanent error ends it at once. Not safe for concurrent use.
type supervisor struct {
	failover time.Duration
	log      *zap.Logger
	restarts *prometheus.CounterVec // by cause
	// progress counts work finished (records whose outputs are acknowledged): a runner
	// that moved it, or that ran for longer than failover, was healthy before it failed.
	progress func() int64
	// backoff is the wait before reopening after the nth failure in a row (from 0).
	backoff func(n int) time.Duration
	now     func() time.Time
}

// newRestartsCounter registers streamscore_operator_restarts_total on reg.
func newRestartsCounter(reg prometheus.Registerer) (*prometheus.CounterVec, error) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "streamscore_operator_restarts_total",
		Help: "Times live scoring reopened its Kafka clients and restarted the operator from the committed offsets after a transient failure, by cause (connection, timeout, other).",
	}, []string{"cause"})
	if err := reg.Register(c); err != nil {
		return nil, fmt.Errorf("registering streamscore_operator_restarts_total: %w", err)
	}
	return c, nil
}

// restartBackoff is 200ms doubling to 5s: the first restart is quick (a single failed
// write), later ones leave the cluster time to elect leaders.
func restartBackoff(n int) time.Duration {
	return min(200*time.Millisecond<<min(n, 5), 5*time.Second)
}

// run runs first, then each runner open returns, until one returns nil (ctx ended) or
// a failure it does not restart after. open is called with the next runner to start
// and must return a runner that is closed by its Close (or an error, then nothing to
// close). run returns nil when ctx ends while it waits to reopen.
func (s *supervisor) run(ctx context.Context, first runner, open func(context.Context) (runner, error)) error {
	cur := first
	var failingSince time.Time // zero: the last runner was healthy
	failures := 0
	for {
		before, started := s.progress(), s.now()
		err := cur.Run(ctx)
		cur.Close()
		if err == nil || ctx.Err() != nil {
			return err
		}
		if !transient(err) {
			return err
		}
		if s.progress() != before || s.now().Sub(started) > s.failover {
			failingSince, failures = time.Time{}, 0
		}
		if failingSince.IsZero() {
			failingSince = s.now()
		}
		s.restarts.WithLabelValues(restartCause(err)).Inc()
		var gaveUp error
		cur, gaveUp = s.reopen(ctx, err, failingSince, &failures, open)
		if gaveUp != nil || cur == nil {
			return gaveUp // nil: ctx ended while waiting
		}
	}
}

// reopen waits and opens a new runner until one opens, ctx ends (nil, nil), an open fails
// permanently, or failover has passed since failingSince.
func (s *supervisor) reopen(ctx context.Context, cause error, failingSince time.Time, failures *int, open func(context.Context) (runner, error)) (runner, error) {
	for {
		wait := s.backoff(*failures)
		*failures++
		if s.now().Add(wait).Sub(failingSince) > s.failover {
			return nil, fmt.Errorf("live scoring: gave up after %v without progress (kafka.failover_timeout): %w", s.failover, cause)
		}
		s.log.Warn("live scoring stopped on a transient failure; reopening the Kafka clients and restarting from the committed offsets",
			zap.Error(cause), zap.String("cause", restartCause(cause)), zap.Duration("in", wait),
			zap.Duration("failing_for", s.now().Sub(failingSince)), zap.Duration("gives_up_after", s.failover))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, nil
		case <-t.C:
		}
		r, err := open(ctx)
		if err == nil {
			return r, nil
		}
		if ctx.Err() != nil {
			return nil, nil
		}
		if !transient(err) {
			return nil, fmt.Errorf("live scoring: restarting after %w: %w", cause, err)
		}
		cause = err
	}
}
