// Package audit checks what the drivers wrote: it counts the outputs read back from the
// output topics per input record (the demo's summary, the fault tests' verdicts) and joins
// two prediction streams on their input records (verify). It exists so that these checks
// read outputs the way any consumer would, from Kafka or a file, outside the operator.
package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"

	"github.com/streamscore/streamscore/pipeline"
	"github.com/streamscore/streamscore/pipeline/record"
	"github.com/streamscore/streamscore/topics"
)

// Key names the input record an output is for.
type Key struct {
	Topic     string
	Partition int32
	Offset    int64
}

func (k Key) String() string { return fmt.Sprintf("%s/%d@%d", k.Topic, k.Partition, k.Offset) }

// Counts are the outputs seen, per distinct input record.
type Counts struct {
	Predictions  int64 // input records with a prediction
	DeadLettered int64 // input records with a dead letter
	Alerts       int64 // alerts, not deduplicated
	Duplicates   int64 // predictions or dead letters beyond the first for their input record
}

// Outputs counts outputs per input record as read back from the predictions, alerts and
// dead-letter topics. Add, Scored, Counts and DeadLetterClass are safe for concurrent
// use, so one goroutine may Consume while another polls Scored.
type Outputs struct {
	preds, alerts, dlq string

	mu         sync.Mutex
	seenPred   map[Key]int
	seenDLQ    map[Key]int
	dlqClass   map[Key]string
	alertN     int64
	firstAlert []byte // the first alert's value, as a subscriber received it
	dups       int64
	decodeErrs int64
}

// NewOutputs counts the outputs of the three named topics.
func NewOutputs(preds, alerts, dlq string) *Outputs {
	return &Outputs{preds: preds, alerts: alerts, dlq: dlq, seenPred: map[Key]int{}, seenDLQ: map[Key]int{}, dlqClass: map[Key]string{}}
}

// Consume adds what r fetches until ctx ends or r is closed (nil), or a fetch fails.
func (a *Outputs) Consume(ctx context.Context, r *topics.Reader) error {
	for {
		recs, err := r.Fetch(ctx)
		a.Add(recs)
		if ctx.Err() != nil || errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// ReadToEnd adds the output topics of a from their start to their end offsets now: once
// every writer has stopped, that is everything they wrote, whatever the timing.
func (a *Outputs) ReadToEnd(ctx context.Context, kc topics.ClientConfig) error {
	return topics.ReadToEnd(ctx, kc, []string{a.preds, a.alerts, a.dlq}, func(recs []record.Record) error {
		a.Add(recs)
		return nil
	})
}

// Add counts records of the output topics.
func (a *Outputs) Add(recs []record.Record) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := range recs {
		r := &recs[i]
		switch r.Topic {
		case a.preds:
			var p pipeline.Prediction
			if err := json.Unmarshal(r.Value, &p); err != nil {
				a.decodeErrs++
				continue
			}
			k := Key{p.Source.Topic, p.Source.Partition, p.Source.Offset}
			a.seenPred[k]++
			if a.seenPred[k] > 1 {
				a.dups++
			}
		case a.alerts:
			a.alertN++
			if a.firstAlert == nil {
				a.firstAlert = append([]byte(nil), r.Value...)
			}
		case a.dlq:
			k := deadLetterSource(r.Headers)
			a.dlqClass[k] = string(record.HeaderValue(r.Headers, record.HeaderErrorClass))
			a.seenDLQ[k]++
			if a.seenDLQ[k] > 1 {
				a.dups++
			}
		}
	}
}

// deadLetterSource reads the input record a dead letter is for from its headers; a
// missing or unreadable partition or offset is -1.
func deadLetterSource(hs []record.Header) Key {
	k := Key{Topic: string(record.HeaderValue(hs, record.HeaderSourceTopic)), Partition: -1, Offset: -1}
	if p, err := strconv.ParseInt(string(record.HeaderValue(hs, record.HeaderSourcePartition)), 10, 32); err == nil {
		k.Partition = int32(p)
	}
	if o, err := strconv.ParseInt(string(record.HeaderValue(hs, record.HeaderSourceOffset)), 10, 64); err == nil {
		k.Offset = o
	}
	return k
}

// Scored is the number of distinct input records with a prediction or a dead letter.
func (a *Outputs) Scored() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return int64(len(a.seenPred) + len(a.seenDLQ))
}

// Counts returns what has been counted so far.
func (a *Outputs) Counts() Counts {
	a.mu.Lock()
	defer a.mu.Unlock()
	return Counts{Predictions: int64(len(a.seenPred)), DeadLettered: int64(len(a.seenDLQ)), Alerts: a.alertN, Duplicates: a.dups}
}

// DeadLetterClass is the error class of the dead letter for k ("" when there is none).
func (a *Outputs) DeadLetterClass(k Key) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.dlqClass[k]
}

// FirstAlert is the value of the first alert read, nil before one.
func (a *Outputs) FirstAlert() []byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.firstAlert
}
