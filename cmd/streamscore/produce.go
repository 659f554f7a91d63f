package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/streamscore/streamscore/cmd/streamscore/sim"
	"github.com/streamscore/streamscore/topics"
)

type produceOptions struct {
	events      int
	rate        float64 // events/s; 0: as fast as possible
	seed        uint64
	badFraction float64
	topic       string
	labels      string // "" : no labels
	// labelDelay: a transaction's label is written once the simulated clock has passed its
	// time by this much (the handbook's feedback delay); default 7 days.
	labelDelay time.Duration
	// stream, when set, continues an earlier call's simulation (seed and badFraction are
	// then ignored); holdLabels keeps the labels not yet due for the next call instead of
	// writing them all at the end.
	stream     *eventStream
	holdLabels bool
	// days, when > 0, stops at the first transaction of that simulated day instead.
	days int
}

// eventStream is the simulator with the labels it still owes.
type eventStream struct {
	gen     *sim.Generator
	bad     *sim.Corruptor
	pending []sim.Tx // transactions whose labels are not yet due, in time order
}

func newEventStream(seed uint64, badFraction float64) *eventStream {
	return &eventStream{gen: sim.New(sim.Config{Seed: seed}), bad: sim.NewCorruptor(seed, badFraction)}
}

type produceResult struct {
	events, bad, labels int64
	elapsed             time.Duration
}

// rawProducer is what produceEvents needs of a Kafka producer.
type rawProducer interface {
	ProduceRaw(topic string, key, value []byte, headers map[string]string, ack func(error))
	Flush(ctx context.Context) error
}

// produceEvents writes generated events (and their labels) and waits for every ack.
// progress, when not nil, is incremented per event handed to the producer.
func produceEvents(ctx context.Context, p rawProducer, o produceOptions, progress *atomic.Int64) (produceResult, error) {
	var res produceResult
	st := o.stream
	if st == nil {
		st = newEventStream(o.seed, o.badFraction)
	}
	if o.labelDelay <= 0 {
		o.labelDelay = 7 * 24 * time.Hour
	}
	var failed atomic.Pointer[error]
	ack := func(err error) {
		if err != nil {
			failed.CompareAndSwap(nil, &err)
		}
	}
	start := time.Now()
	for i := 0; i < o.events || o.days > 0; i++ {
		if i&1023 == 0 {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			if e := failed.Load(); e != nil {
				return res, fmt.Errorf("producing events: %w", *e)
			}
		}
		if o.rate > 0 {
			due := start.Add(time.Duration(float64(i) / o.rate * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
					return res, ctx.Err()
				}
			}
		}
		tx := st.gen.Next()
		if o.days > 0 && st.gen.Day() >= o.days {
			break
		}
		// Labels become known labelDelay after their transaction: write the ones now due
		// first, so that each labels partition is in time order.
		for o.labels != "" && len(st.pending) > 0 && !st.pending[0].Time.Add(o.labelDelay).After(tx.Time) {
			l := &st.pending[0]
			p.ProduceRaw(o.labels, l.Key(), l.AppendLabel(make([]byte, 0, 160)), nil, ack)
			res.labels++
			st.pending = st.pending[1:]
		}
		val, kind := st.bad.Maybe(tx.AppendEvent(make([]byte, 0, 128)))
		p.ProduceRaw(o.topic, tx.Key(), val, nil, ack)
		res.events++
		if kind != "" {
			res.bad++
		} else if o.labels != "" {
			st.pending = append(st.pending, tx)
		}
		if progress != nil {
			progress.Add(1)
		}
	}
	if !o.holdLabels {
		// The simulation stops here; its clock runs on past the last labels' due times.
		for i := range st.pending {
			p.ProduceRaw(o.labels, st.pending[i].Key(), st.pending[i].AppendLabel(make([]byte, 0, 160)), nil, ack)
			res.labels++
		}
		st.pending = nil
	}
	if err := p.Flush(ctx); err != nil {
		return res, fmt.Errorf("flushing events: %w", err)
	}
	if e := failed.Load(); e != nil {
		return res, fmt.Errorf("producing events: %w", *e)
	}
	res.elapsed = time.Since(start)
	return res, nil
}

func newProduceCmd(g *globalFlags) *cobra.Command {
	o := produceOptions{}
	cmd := &cobra.Command{
		Use:   "produce",
		Short: "Generate card transactions (the Fraud Detection Handbook simulator) into Kafka",
		Long: `produce writes N simulated transactions to the input topic, keyed by customer id,
and their fraud labels to the labels topic, each once the simulated clock has passed its
transaction by --label-delay (the labels left owed at the end are written last). The
stream is deterministic for a seed. With
--bad-fraction, that fraction of the events is replaced by malformed ones (truncated JSON,
invalid UTF-8, wrong types, NaN/Inf, absurd values, oversize, ...), which streamscore
must dead-letter.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.load()
			if err != nil {
				return err
			}
			if o.topic == "" {
				o.topic = c.Topics.Input[0]
			}
			o.labels = c.Topics.Labels
			if o.badFraction < 0 || o.badFraction > 1 {
				return fmt.Errorf("--bad-fraction %v: want 0 to 1", o.badFraction)
			}
			ctx := cmd.Context()
			adm, err := topics.NewAdmin(c.Kafka)
			if err != nil {
				return err
			}
			err = adm.EnsureTopics(ctx, c.Topics.ReplicationFactor, topics.TopicSpec{Name: o.topic, Partitions: 3}, topics.TopicSpec{Name: o.labels, Partitions: 3})
			adm.Close()
			if err != nil {
				return err
			}
			p, err := topics.NewProducer(c.Kafka, topics.ProducerOptions{})
			if err != nil {
				return err
			}
			defer p.Close()
			res, err := produceEvents(ctx, p, o, nil)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "produced %d events (%d malformed) to %s and %d labels to %s in %v (%.0f events/s)\n",
				res.events, res.bad, o.topic, res.labels, o.labels, res.elapsed.Round(time.Millisecond), float64(res.events)/res.elapsed.Seconds())
			return nil
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&o.events, "events", 10000, "number of events")
	fl.Float64Var(&o.rate, "rate", 0, "events per second (0: as fast as possible)")
	fl.Uint64Var(&o.seed, "seed", 1, "random seed")
	fl.Float64Var(&o.badFraction, "bad-fraction", 0, "fraction of malformed events, 0 to 1")
	fl.StringVar(&o.topic, "topic", "", "input topic (default: the first of topics.input)")
	fl.DurationVar(&o.labelDelay, "label-delay", 7*24*time.Hour, "simulated time after a transaction at which its label is written")
	return cmd
}
