package pipelinetest_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/streamscore/streamscore/pipeline"
	"github.com/streamscore/streamscore/pipeline/pipelinetest"
	"github.com/streamscore/streamscore/pipeline/record"
)

// lockedBuffer is the file a FileSink writes: the sink may write from any goroutine.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) lines() []record.Record {
	b.mu.Lock()
	defer b.mu.Unlock()
	var recs []record.Record
	sc := bufio.NewScanner(bytes.NewReader(b.buf.Bytes()))
	for sc.Scan() {
		recs = append(recs, record.Record{Value: bytes.Clone(sc.Bytes())})
	}
	return recs
}

type brokenFile struct{}

func (brokenFile) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestFileSinkContract(t *testing.T) {
	features := pipelinetest.SinkFeatures{ValuesOnly: true, AckWhenBuffered: true}
	pipelinetest.TestSink(t, features, func(t *testing.T) pipelinetest.SinkSetup {
		var file lockedBuffer
		return pipelinetest.SinkSetup{
			Topic: "predictions", Partitions: 1,
			Sink:     pipeline.NewFileSink(&file, "predictions", "predictions.dlq"),
			ReadBack: func(context.Context) ([]record.Record, error) { return file.lines(), nil },
			Failing: func(*testing.T) pipeline.Sink {
				return pipeline.NewFileSink(brokenFile{}, "any", "any.dlq")
			},
		}
	})
}

func TestDiscardSinkContract(t *testing.T) {
	pipelinetest.TestSink(t, pipelinetest.SinkFeatures{}, func(*testing.T) pipelinetest.SinkSetup {
		return pipelinetest.SinkSetup{Topic: "predictions", Partitions: 1, Sink: pipeline.DiscardSink{}}
	})
}
