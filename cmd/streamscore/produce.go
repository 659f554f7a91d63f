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
	gen := sim.New(sim.Config{Seed: o.seed})
	bad := sim.NewCorruptor(o.seed, o.badFraction)
	var failed atomic.Pointer[error]
	ack := func(err error) {
		if err != nil {
			failed.CompareAndSwap(nil, &err)
		}
	}
	start := time.Now()
	for i := 0; i < o.events; i++ {
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
		tx := gen.Next()
		val, kind := bad.Maybe(tx.AppendEvent(make([]byte, 0, 128)))
		p.ProduceRaw(o.topic, tx.Key(), val, nil, ack)
		res.events++
		if kind != "" {
			res.bad++
		} else if o.labels != "" {
			p.ProduceRaw(o.labels, tx.Key(), tx.AppendLabel(make([]byte, 0, 160)), nil, ack)
			res.labels++
		}
		if progress != nil {
			progress.Add(1)
		}
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
and their fraud labels to the labels topic. The stream is deterministic for a seed. With
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
	return cmd
}
