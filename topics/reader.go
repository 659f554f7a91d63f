package topics

import (
	"context"
	"io"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamscore/streamscore/pipeline/record"
)

// Reader consumes topics outside any group, from their start or their end, with
// read_committed isolation: `streamscore tail`, the demo's audit of its outputs, and tests.
// Fetch is not safe for concurrent use.
type Reader struct {
	cl *kgo.Client
}

// ReadFrom is where a Reader begins in each partition: FromStart or FromEnd.
type ReadFrom bool

const (
	// FromEnd reads only what is written after the reader first fetches.
	FromEnd ReadFrom = false
	// FromStart reads every partition from its earliest offset.
	FromStart ReadFrom = true
)

// NewReader starts reading topics from the earliest offset (FromStart) or from the end
// (FromEnd).
func NewReader(cc ClientConfig, from ReadFrom, topics ...string) (*Reader, error) {
	opts, err := cc.opts("reader")
	if err != nil {
		return nil, err
	}
	start := kgo.NewOffset().AtEnd()
	if from == FromStart {
		start = kgo.NewOffset().AtStart()
	}
	opts = append(opts,
		kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(start),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	return &Reader{cl: cl}, nil
}

// Fetch blocks until records arrive or ctx ends (ctx's error); io.EOF after Close.
func (r *Reader) Fetch(ctx context.Context) ([]record.Record, error) { return poll(ctx, r.cl) }

// poll blocks until records arrive or ctx ends (ctx's error); io.EOF once cl is closed.
func poll(ctx context.Context, cl *kgo.Client) ([]record.Record, error) {
	for {
		fs := cl.PollFetches(ctx)
		if fs.IsClientClosed() {
			return nil, io.EOF
		}
		if err := ctx.Err(); err != nil {
			return convert(fs), err
		}
		if recs := convert(fs); len(recs) > 0 {
			return recs, nil
		}
	}
}

// Close stops the reader.
func (r *Reader) Close() { r.cl.Close() }
