package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/streamscore/streamscore/cmd/streamscore/sim"
	"github.com/streamscore/streamscore/pipeline"
)

func newFeaturesCmd(g *globalFlags) *cobra.Command {
	var days int
	var seed uint64
	var out string
	cmd := &cobra.Command{
		Use:   "features",
		Short: "Write a training CSV: simulated events through the operator's own decoder and feature spec",
		Long: `features generates --days days of simulated transactions, runs each event's JSON
through the same decoder and feature spec that live scoring uses, and writes one CSV row per
event with its features under the spec's names and its label (TX_FRAUD). Training on this
file (testdata/model/train.py) means the model sees exactly the features it will be served.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.load()
			if err != nil {
				return err
			}
			cc, err := c.validate(false, false)
			if err != nil {
				return err
			}
			f, err := os.Create(out)
			if err != nil {
				return err
			}
			defer f.Close()
			w := bufio.NewWriterSize(f, 1<<20)
			n, err := writeFeatureCSV(w, cc, sim.New(sim.Config{Seed: seed}), days)
			if err != nil {
				return err
			}
			if err := w.Flush(); err != nil {
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %d rows of %d features to %s\n", n, cc.features.Len(), out)
			return nil
		},
	}
	cmd.Flags().IntVar(&days, "days", 120, "days of simulated transactions")
	cmd.Flags().Uint64Var(&seed, "seed", 1, "simulator seed")
	cmd.Flags().StringVar(&out, "out", "features.csv", "output CSV")
	return cmd
}

func writeFeatureCSV(w *bufio.Writer, cc *compiled, gen *sim.Generator, days int) (int, error) {
	dec := pipeline.NewDecoder(cc.schema)
	ev := dec.NewEvent()
	feat := make([]float32, cc.features.Len())
	w.WriteString("transaction_id,tx_datetime,partition,offset")
	for _, name := range cc.features.Names() {
		w.WriteString("," + name)
	}
	w.WriteString(",TX_FRAUD\n")
	buf := make([]byte, 0, 256)
	n := 0
	for {
		tx := gen.Next()
		if gen.Day() >= days {
			return n, nil
		}
		val := tx.AppendEvent(buf[:0])
		if err := dec.Decode(val, time.Time{}, ev); err != nil {
			return n, fmt.Errorf("transaction %d: %w", tx.ID, err)
		}
		if err := cc.features.Extract(ev, feat); err != nil {
			return n, fmt.Errorf("transaction %d: %w", tx.ID, err)
		}
		line := strconv.AppendInt(buf[:0], tx.ID, 10)
		line = append(line, ',')
		line = tx.Time.UTC().AppendFormat(line, time.RFC3339)
		line = append(line, ",-1,"...)
		line = strconv.AppendInt(line, int64(n), 10)
		for _, x := range feat {
			line = append(line, ',')
			line = strconv.AppendFloat(line, float64(x), 'g', -1, 32)
		}
		line = append(line, ',')
		line = strconv.AppendInt(line, int64(tx.Fraud), 10)
		line = append(line, '\n')
		if _, err := w.Write(line); err != nil {
			return n, err
		}
		n++
	}
}
