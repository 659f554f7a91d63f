package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"sync"

	"github.com/streamscore/streamscore/pipeline"
	"github.com/streamscore/streamscore/pipeline/record"
)

// Fetcher reads a topic from a known position; *topics.Tail implements it.
type Fetcher interface {
	Fetch(ctx context.Context) ([]record.Record, error)
}

// position is an input record's place: the source of a prediction.
type position struct {
	topic     string
	partition int32
	offset    int64
}

// earlyLimit bounds the predictions kept for a waiter that has not registered yet.
const earlyLimit = 4096

// Predictions reads the predictions topic once per instance and hands each prediction to
// the request waiting for its source position. Whichever instance scores an event, every
// instance sees its prediction, so any instance can answer any event. The one reader
// serves every request: a request costs a map entry, not a consumer.
//
// A request registers its waiter once its event is acknowledged, which is when it learns
// the offset; in principle the prediction could be read before that. While any produce is
// between its start (Expect) and its waiter, predictions with no waiter are kept, at most
// earlyLimit of them, so that the waiter finds its own. With no produce in flight nothing
// is kept. Methods are safe for concurrent use; Run must be called once.
type Predictions struct {
	src      Fetcher
	mu       sync.Mutex
	waits    map[position]chan []byte
	early    map[position][]byte
	order    []position // early's keys, oldest first
	inflight int
}

// NewPredictions serves waiters from src, which must start reading before any event of
// the API is produced.
func NewPredictions(src Fetcher) *Predictions {
	return &Predictions{src: src, waits: map[position]chan []byte{}, early: map[position][]byte{}}
}

// Run dispatches predictions until ctx ends or src is closed.
func (p *Predictions) Run(ctx context.Context) error {
	for {
		recs, err := p.src.Fetch(ctx)
		p.dispatch(recs)
		switch {
		case ctx.Err() != nil, errors.Is(err, io.EOF):
			return nil
		case err != nil:
			return err
		}
	}
}

func (p *Predictions) dispatch(recs []record.Record) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.waits) == 0 && p.inflight == 0 {
		return // nobody asks: the common case of a stream with no API traffic
	}
	for i := range recs {
		pos, ok := sourceOf(recs[i].Value)
		if !ok {
			continue
		}
		if ch, ok := p.waits[pos]; ok {
			ch <- recs[i].Value // buffered, one send per waiter
			delete(p.waits, pos)
			continue
		}
		if p.inflight > 0 {
			p.keepEarly(pos, recs[i].Value)
		}
	}
}

func (p *Predictions) keepEarly(pos position, v []byte) {
	if _, dup := p.early[pos]; dup {
		return // a duplicate (a rescore after a rebalance): the first one answers
	}
	if len(p.order) >= earlyLimit {
		delete(p.early, p.order[0])
		p.order = p.order[1:]
	}
	p.early[pos] = v
	p.order = append(p.order, pos)
}

// Expect says an event is being produced: until the returned function is called,
// predictions with no waiter are kept for it. Call the function after Wait.
func (p *Predictions) Expect() (done func()) {
	p.mu.Lock()
	p.inflight++
	p.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			p.mu.Lock()
			defer p.mu.Unlock()
			p.inflight--
			if p.inflight == 0 {
				clear(p.early)
				p.order = p.order[:0]
			}
		})
	}
}

// Wait registers a waiter for the prediction of the input record at (topic, partition,
// offset): the channel receives its value once. cancel drops the waiter.
func (p *Predictions) Wait(topic string, partition int32, offset int64) (<-chan []byte, func()) {
	pos := position{topic, partition, offset}
	ch := make(chan []byte, 1)
	p.mu.Lock()
	defer p.mu.Unlock()
	if v, ok := p.early[pos]; ok {
		ch <- v
		delete(p.early, pos)
		return ch, func() {}
	}
	p.waits[pos] = ch
	return ch, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.waits[pos] == ch {
			delete(p.waits, pos)
		}
	}
}

// Waiting is the number of registered waiters.
func (p *Predictions) Waiting() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.waits)
}

// sourceOf reads a prediction's source position. Predictions begin with it in a fixed
// form, {"source":{"topic":…,"partition":…,"offset":…}, which is read without decoding the
// rest; anything else is decoded in full.
func sourceOf(v []byte) (position, bool) {
	const (
		head = `{"source":{"topic":"`
		part = `,"partition":`
		off  = `,"offset":`
	)
	if rest, ok := bytes.CutPrefix(v, []byte(head)); ok {
		if end := bytes.IndexByte(rest, '"'); end >= 0 && bytes.IndexByte(rest[:end], '\\') < 0 {
			topic := string(rest[:end])
			rest = rest[end+1:]
			if rest, ok = bytes.CutPrefix(rest, []byte(part)); ok {
				if pEnd := bytes.IndexByte(rest, ','); pEnd > 0 {
					pn, perr := strconv.ParseInt(string(rest[:pEnd]), 10, 32)
					if rest, ok = bytes.CutPrefix(rest[pEnd:], []byte(off)); ok && perr == nil {
						if oEnd := bytes.IndexByte(rest, '}'); oEnd > 0 {
							if o, err := strconv.ParseInt(string(rest[:oEnd]), 10, 64); err == nil {
								return position{topic, int32(pn), o}, true
							}
						}
					}
				}
			}
		}
	}
	var pr pipeline.Prediction
	if err := json.Unmarshal(v, &pr); err != nil || pr.Source.Topic == "" {
		return position{}, false
	}
	return position{pr.Source.Topic, pr.Source.Partition, pr.Source.Offset}, true
}
