package topics

import (
	"context"
	"errors"
	"io"

	"github.com/streamscore/streamscore/pipeline/record"
)

// ReadToEnd reads every partition of names from its earliest offset to the end offsets
// seen when it starts (the last stable offsets: read_committed, so aborted transactions
// are skipped and a partition ending in a transaction marker still ends), and hands each
// fetch to fn, in fetch order, on the calling goroutine. It returns when the ends are
// reached, when fn fails (its error) or when ctx ends. Unlike a Reader it needs no quiet
// period to know it is done: whatever was acknowledged before the call is read.
func ReadToEnd(ctx context.Context, cc ClientConfig, names []string, fn func([]record.Record) error) error {
	r, err := NewReplay(ctx, cc, ReplayOptions{Topics: names})
	if err != nil {
		return err
	}
	defer r.Close()
	for {
		recs, err := r.Fetch(ctx)
		if len(recs) > 0 {
			if ferr := fn(recs); ferr != nil {
				return ferr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
