package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/topics"
)

// catchUpTimeout bounds stage c.
const catchUpTimeout = 10 * time.Minute

// catchUp is stage c: a `streamscore run` child scores the n events already on c's input
// topic from offset zero; the clock runs from its start until n predictions are on the
// predictions topic. CPU time and peak RSS are the child's, read from /proc.
func catchUp(ctx context.Context, ch child, c *config.Config, n int) (CatchUpResult, error) {
	return catchUpUntil(ctx, ch, c, n, func(adm *topics.Admin, deadline time.Time) error {
		return waitForPredictions(ctx, adm, c.Topics.Predictions, int64(n), deadline)
	})
}

// catchUpExactlyOnce is stage f: stage c with `delivery: exactly-once`, on outputs, a group
// and a transactional id of its own. The clock stops when the group's committed offsets
// reach the end of the input: in a transaction they are committed with the outputs, and
// the predictions topic's end offsets would also count commit markers and aborted records.
func catchUpExactlyOnce(ctx context.Context, ch child, c *config.Config, n int) (CatchUpResult, error) {
	e := *c
	e.Delivery = config.DeliveryExactlyOnce
	e.Group += "-eos"
	e.TransactionalID = "tx-" + e.Group
	e.Topics.Predictions += "-eos"
	e.Topics.Alerts += "-eos"
	e.Topics.DeadLetter += "-eos"
	return catchUpUntil(ctx, ch, &e, n, func(adm *topics.Admin, deadline time.Time) error {
		return waitForCommitted(ctx, adm, e.Group, e.Topics.Input, deadline)
	})
}

// catchUpUntil runs stage c or f: a `streamscore run` child with c from its start until done
// returns.
func catchUpUntil(ctx context.Context, ch child, c *config.Config, n int, done func(*topics.Admin, time.Time) error) (CatchUpResult, error) {
	var r CatchUpResult
	adm, err := topics.NewAdmin(c.Kafka)
	if err != nil {
		return r, err
	}
	defer adm.Close()
	if err := createTopics(ctx, c, c.Topics.Predictions, c.Topics.Alerts, c.Topics.DeadLetter); err != nil {
		return r, err
	}
	start := time.Now()
	cmd, stop, err := ch.startRun(c)
	if err != nil {
		return r, err
	}
	defer stop()
	if err := done(adm, start.Add(catchUpTimeout)); err != nil {
		return r, err
	}
	el := time.Since(start)
	pid := cmd.Process.Pid
	cpu, err := CPUTime(pid)
	if err != nil {
		return r, err
	}
	hwm, err := PeakRSS(pid)
	if err != nil {
		return r, err
	}
	return CatchUpResult{
		EventsPerSecond: float64(n) / el.Seconds(), Seconds: el.Seconds(),
		CPUMicrosPerEvt: float64(cpu.Microseconds()) / float64(n), PeakRSSMiB: float64(hwm) / (1 << 20),
	}, nil
}

// waitForPredictions polls the end offsets of topic until they add up to n.
func waitForPredictions(ctx context.Context, adm *topics.Admin, topic string, n int64, deadline time.Time) error {
	for {
		got, err := adm.EndOffsetsSum(ctx, topic)
		if err != nil {
			return err
		}
		if got >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("catch-up: %d of %d predictions after %v", got, n, catchUpTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitForCommitted polls group's committed offsets until they reach the end of topics.
func waitForCommitted(ctx context.Context, adm *topics.Admin, group string, topics []string, deadline time.Time) error {
	for {
		behind, err := adm.Behind(ctx, group, topics...)
		if err != nil {
			return err
		}
		if behind == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("exactly-once catch-up: %d events not committed after %v", behind, catchUpTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
