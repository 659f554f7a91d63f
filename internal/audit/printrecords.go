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
	return PrintRecordsDecoded(ctx, r, out, limit, nil)
}

// PrintRecordsDecoded is PrintRecords with each value of a record without headers passed
// through decode first (output.format avro: drivers.PredictionJSON); nil: as it is.
func PrintRecordsDecoded(ctx context.Context, r *topics.Reader, out io.Writer, limit int, decode func(context.Context, []byte) ([]byte, error)) error {
	w := bufio.NewWriter(out)
	n := 0
	for {
		recs, err := r.Fetch(ctx)
		for _, rec := range recs {
			v := rec.Value
			if decode != nil {
				var derr error
				if v, derr = decode(ctx, v); derr != nil {
					return fmt.Errorf("%s/%d@%d: %w", rec.Topic, rec.Partition, rec.Offset, derr)
				}
			}
			if len(rec.Headers) > 0 {
				fmt.Fprintf(w, "%s/%d@%d", rec.Topic, rec.Partition, rec.Offset)
				for _, h := range rec.Headers {
					fmt.Fprintf(w, " %s=%q", h.Key, h.Value)
				}
				fmt.Fprintf(w, " value=%q\n", v[:min(len(v), 200)])
			} else {
				// A bufio.Writer keeps its first error and Flush returns it below.
				_, _ = w.Write(v)
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
