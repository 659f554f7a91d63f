package topics

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// FollowOptions tune Follow.
type FollowOptions struct {
	// From is the first offset to read: 0 reads from the start, Snapshot.End continues
	// after a snapshot.
	From int64
	// CaughtUp, when set, is called once, after fn has seen every activation written
	// before Follow was called: an instance starts scoring only then, with the versions
	// the log made live.
	CaughtUp func()
	// Malformed, when set, is told about activation records that are skipped.
	Malformed func(Malformed)
}

// Follow reads the activations from o.From on and calls fn with each, in log order, from
// Follow's goroutine, until ctx ends (it returns ctx's error), fn returns an error
// (returned wrapped) or a fetch fails for good (the client retries transient errors
// itself); a caller that must keep following calls it again from the last Offset + 1. It reads live: a new activation reaches fn as soon as the broker
// answers the pending fetch (it answers when data arrives; an idle fetch waits 500 ms).
func (r *Registry) Follow(ctx context.Context, o FollowOptions, fn func(Activation) error) error {
	end, err := r.endOffset(ctx)
	if err != nil {
		return fmt.Errorf("following activations: %w", err)
	}
	caughtUp := func() {
		if o.CaughtUp != nil {
			o.CaughtUp()
			o.CaughtUp = nil
		}
	}
	if end <= o.From {
		caughtUp()
	}
	cl, err := r.consumer(o.From)
	if err != nil {
		return fmt.Errorf("following activations: %w", err)
	}
	defer cl.Close()
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fetchErr(fs); err != nil {
			return fmt.Errorf("following activations: %w", err)
		}
		var ferr error
		fs.EachRecord(func(rec *kgo.Record) {
			if ferr != nil {
				return
			}
			if !rec.Attrs.IsControl() && bytes.HasPrefix(rec.Key, []byte("activation/")) {
				a, err := decodeActivation(rec)
				switch {
				case err != nil && o.Malformed != nil:
					o.Malformed(Malformed{Offset: rec.Offset, Key: string(rec.Key), Err: err})
				case err == nil:
					if err := fn(a); err != nil {
						ferr = fmt.Errorf("applying activation of %s@%s at offset %d: %w", a.Name, a.Version, a.Offset, err)
						return
					}
				}
			}
			if rec.Offset >= end-1 {
				caughtUp()
			}
		})
		if ferr != nil {
			return ferr
		}
	}
}

// endOffset is the registry partition's last stable offset: what a read_committed
// reader can reach now (markers may be written inside the operator's transactions).
func (r *Registry) endOffset(ctx context.Context) (int64, error) {
	ends, err := r.adm.ListCommittedOffsets(ctx, r.topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		// the leader may have moved: the next try asks the new one, not the dead one
		r.prod.ForceMetadataRefresh()
		return 0, fmt.Errorf("listing the end offset of %s: %w", r.topic, err)
	}
	e, ok := ends.Lookup(r.topic, 0)
	if !ok {
		return 0, fmt.Errorf("listing the end offset of %s: no partition 0", r.topic)
	}
	return e.Offset, nil
}

func (r *Registry) consumer(from int64) (*kgo.Client, error) {
	opts, err := r.cc.opts("registry-reader")
	if err != nil {
		return nil, err
	}
	opts = append(opts,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{r.topic: {0: kgo.NewOffset().At(from)}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Control records take offsets too; keeping them lets a scan reach an end
		// offset that sits just after a transaction marker.
		kgo.KeepControlRecords(),
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.FetchMaxBytes(64<<20),
		kgo.FetchMaxPartitionBytes(32<<20),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("creating registry reader: %w", err)
	}
	return cl, nil
}

// scan calls fn with every data record up to the end offset captured now.
func (r *Registry) scan(ctx context.Context, fn func(*kgo.Record)) error {
	end, err := r.endOffset(ctx)
	if err != nil {
		return err
	}
	return r.scanTo(ctx, end, fn)
}

func (r *Registry) scanTo(ctx context.Context, end int64, fn func(*kgo.Record)) error {
	if end <= 0 {
		return nil
	}
	cl, err := r.consumer(0)
	if err != nil {
		return err
	}
	defer cl.Close()
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("reading %s up to offset %d: %w", r.topic, end, err)
		}
		if err := fetchErr(fs); err != nil {
			return fmt.Errorf("reading %s: %w", r.topic, err)
		}
		done := false
		fs.EachRecord(func(rec *kgo.Record) {
			if done || rec.Offset >= end {
				done = true
				return
			}
			if !rec.Attrs.IsControl() {
				fn(rec)
			}
			done = rec.Offset == end-1
		})
		if done {
			return nil
		}
	}
}

func fetchErr(fs kgo.Fetches) error {
	if fs.IsClientClosed() {
		return errors.New("the reader was closed")
	}
	var ferr error
	fs.EachError(func(t string, p int32, err error) {
		if ferr == nil {
			ferr = fmt.Errorf("fetching %s/%d: %w", t, p, err)
		}
	})
	return ferr
}
