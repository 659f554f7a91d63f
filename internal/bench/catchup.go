package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/topics"
)

// catchUpTimeout bounds stage c.
const catchUpTimeout = 10 * time.Minute

// catchUp is stage c: a `streamscore run` child scores the n events already on c's input
// topic from offset zero; the clock runs from its start until n predictions are on the
// predictions topic. CPU time and peak RSS are the child's, read from /proc. The child
// serves /metrics and the Go profiler, on c's metrics address or a free one: the bench
// profiles its CPU over the catch-up (CPUSplit) and reads its state's entity gauges at
// the end.
func catchUp(ctx context.Context, ch child, c *config.Config, n int) (CatchUpResult, error) {
	p := *c
	if p.Metrics.Address == "" {
		addr, err := freeAddress()
		if err != nil {
			return CatchUpResult{}, err
		}
		p.Metrics.Address = addr
	}
	p.Metrics.PProf = true
	return catchUpUntil(ctx, ch, &p, n, true, func(adm *topics.Admin, deadline time.Time) error {
		return waitForPredictions(ctx, adm, p.Topics.Predictions, int64(n), deadline)
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
	// Not profiled here: its profiler is left to --pprof's user (one CPU profile at a time).
	return catchUpUntil(ctx, ch, &e, n, false, func(adm *topics.Admin, deadline time.Time) error {
		return waitForCommitted(ctx, adm, e.Group, e.Topics.Input, deadline)
	})
}

// catchUpUntil runs stage c or f: a `streamscore run` child with c from its start until done
// returns. With profile (c must serve the Go profiler), it profiles the child meanwhile and
// splits its CPU; when c serves /metrics, it reads the child's entity gauges at the end.
func catchUpUntil(ctx context.Context, ch child, c *config.Config, n int, profile bool, done func(*topics.Admin, time.Time) error) (CatchUpResult, error) {
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
	var prof *profiler
	if profile {
		prof = startProfiler(ctx, c.Metrics.Address)
		defer prof.stop() //nolint:errcheck // on an early return: the error returned is another
	}
	if err := done(adm, start.Add(catchUpTimeout)); err != nil {
		return r, err
	}
	el := time.Since(start)
	pid := cmd.Process.Pid
	cpu, err1 := CPUTime(pid)
	hwm, err2 := PeakRSS(pid)
	if err := errors.Join(err1, err2); err != nil {
		return r, err
	}
	r = CatchUpResult{
		EventsPerSecond: float64(n) / el.Seconds(), Seconds: el.Seconds(),
		CPUMicrosPerEvt: float64(cpu.Microseconds()) / float64(n), PeakRSSMiB: float64(hwm) / (1 << 20),
	}
	if c.Metrics.Address != "" {
		if r.WindowEntities, r.FeedbackEntities, err = scrapeEntities(ctx, c.Metrics.Address); err != nil {
			return r, err
		}
	}
	if prof != nil {
		p, err := prof.stop()
		if err != nil {
			return r, err
		}
		if r.CPU, err = splitCPU(p, cpu, n, c.Model.Threads); err != nil {
			return r, err
		}
		r.profile = p
	}
	return r, nil
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
