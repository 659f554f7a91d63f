package pipeline

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strconv"
	"sync"

	"github.com/streamscore/streamscore/pipeline/record"
)

// FileSink writes outputs as JSON lines: a prediction's value as it would go to its topic,
// and a dead letter as {"dead_letter":{"error_class":…,"source":{…}}}. Alerts are not
// written (they repeat predictions). It acknowledges each output once it is in the buffer;
// Flush writes the buffer out. Safe for concurrent use.
type FileSink struct {
	mu          sync.Mutex
	w           *bufio.Writer
	predictions string
	deadLetter  string
	err         error
	buf         []byte
}

// NewFileSink writes the outputs sent to the predictions and dead-letter topics to w.
func NewFileSink(w io.Writer, predictions, deadLetter string) *FileSink {
	return &FileSink{w: bufio.NewWriterSize(w, 1<<20), predictions: predictions, deadLetter: deadLetter}
}

// Produce implements Sink.
func (s *FileSink) Produce(out *Output, ack func(error)) {
	s.mu.Lock()
	switch {
	case s.err != nil:
	case out.Topic == s.predictions:
		_, s.err = s.w.Write(out.Value)
		if s.err == nil {
			s.err = s.w.WriteByte('\n')
		}
	case out.Topic == s.deadLetter:
		b := s.buf[:0]
		b = append(b, `{"dead_letter":{"error_class":`...)
		b = appendJSONString(b, record.HeaderValue(out.Headers, record.HeaderErrorClass))
		b = append(b, `,"error_message":`...)
		b = appendJSONString(b, record.HeaderValue(out.Headers, record.HeaderErrorMessage))
		b = append(b, `,"source":{"topic":`...)
		b = appendJSONString(b, []byte(out.Source.Topic))
		b = append(b, `,"partition":`...)
		b = strconv.AppendInt(b, int64(out.Source.Partition), 10)
		b = append(b, `,"offset":`...)
		b = strconv.AppendInt(b, out.Source.Offset, 10)
		b = append(b, "}}}\n"...)
		s.buf = b
		_, s.err = s.w.Write(b)
	}
	err := s.err
	s.mu.Unlock()
	if err != nil {
		err = fmt.Errorf("writing file sink: %w", err)
	}
	ack(err)
}

// Flush implements Sink.
func (s *FileSink) Flush(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	return s.w.Flush()
}

// DiscardSink acknowledges every output at once and writes nothing: for benchmarks and
// tests that only want the operator's side effects.
// Safe for concurrent use.
type DiscardSink struct{}

// Produce implements Sink.
func (DiscardSink) Produce(_ *Output, ack func(error)) { ack(nil) }

// ProduceAck implements AckProducer.
func (DiscardSink) ProduceAck(_ *Output, a Acker) { a.Ack(nil) }

// Flush implements Sink.
func (DiscardSink) Flush(context.Context) error { return nil }
