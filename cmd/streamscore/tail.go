package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/streamscore/streamscore/topics"
)

func newTailCmd(g *globalFlags) *cobra.Command {
	var fromStart bool
	var limit int
	cmd := &cobra.Command{
		Use:   "tail TOPIC",
		Short: "Print records of a topic (predictions, alerts, dead letters) as they arrive",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.load()
			if err != nil {
				return err
			}
			r, err := topics.NewReader(c.Kafka, fromStart, args[0])
			if err != nil {
				return err
			}
			defer r.Close()
			w := bufio.NewWriter(cmd.OutOrStdout())
			n := 0
			for {
				recs, err := r.Fetch(cmd.Context())
				for _, rec := range recs {
					if len(rec.Headers) > 0 {
						fmt.Fprintf(w, "%s/%d@%d", rec.Topic, rec.Partition, rec.Offset)
						for _, h := range rec.Headers {
							fmt.Fprintf(w, " %s=%q", h.Key, h.Value)
						}
						fmt.Fprintf(w, " value=%q\n", clipBytes(rec.Value, 200))
					} else {
						// A bufio.Writer keeps its first error and Flush returns it below.
						_, _ = w.Write(rec.Value)
						_ = w.WriteByte('\n')
					}
					n++
					if limit > 0 && n >= limit {
						return w.Flush()
					}
				}
				if ferr := w.Flush(); ferr != nil {
					return fmt.Errorf("writing records: %w", ferr)
				}
				if errors.Is(err, io.EOF) || cmd.Context().Err() != nil {
					return nil
				}
				if err != nil {
					return err
				}
			}
		},
	}
	cmd.Flags().BoolVar(&fromStart, "from-beginning", false, "start at the earliest offset instead of the end")
	cmd.Flags().IntVarP(&limit, "limit", "n", 0, "stop after this many records (0: never)")
	return cmd
}

func clipBytes(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}
