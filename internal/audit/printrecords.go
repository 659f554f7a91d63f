package audit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/streamscore/streamscore/topics"
)

// PrintRecords prints r's records to out as `streamscore tail` does: a record with headers (a
// dead letter) as topic/partition@offset, its headers and its value quoted; any other as
// its value on a line. It returns after limit records (0: never), when r is closed, or
// when ctx ends.
func PrintRecords(ctx context.Context, r *topics.Reader, out io.Writer, limit int) error {
	w := bufio.NewWriter(out)
	n := 0
	for {
		recs, err := r.Fetch(ctx)
		for _, rec := range recs {
			if len(rec.Headers) > 0 {
				fmt.Fprintf(w, "%s/%d@%d", rec.Topic, rec.Partition, rec.Offset)
				for _, h := range rec.Headers {
					fmt.Fprintf(w, " %s=%q", h.Key, h.Value)
				}
				fmt.Fprintf(w, " value=%q\n", rec.Value[:min(len(rec.Value), 200)])
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
		if errors.Is(err, io.EOF) || ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
