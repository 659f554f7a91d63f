package pipeline

import (
	"context"
	"time"

	"go.uber.org/zap"
)

// backoff logs a failed attempt at something that needs the broker and waits before the
// next (100ms doubling to 5s); it returns ctx's error if ctx ends first. A broker outage
// makes events wait, not the operator fail.
func backoff(ctx context.Context, log *zap.Logger, attempt int, what string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	d := min(100*time.Millisecond<<min(attempt, 6), 5*time.Second)
	log.Warn(what+" failed; retrying", zap.Error(err), zap.Int("attempt", attempt+1), zap.Duration("in", d))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// retry calls fn until it succeeds, backing off between attempts; it returns ctx's error
// if ctx ends first.
func retry(ctx context.Context, log *zap.Logger, what string, fn func() error) error {
	for attempt := 0; ; attempt++ {
		err := fn()
		if err == nil {
			return nil
		}
		if err := backoff(ctx, log, attempt, what, err); err != nil {
			return err
		}
	}
}
