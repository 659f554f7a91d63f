package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/streamscore/streamscore/pipeline"
)

// POST /v1/events: the body is one event as it would be produced to the input topic. It is
// checked by the operator's decoder (400 with the dead-letter class it would get, and
// never written anywhere), produced to the input topic keyed by schema.key_field, and
// answered with its prediction, the very record that lands on the predictions topic, as
// soon as an instance scores it. When that does not happen within the request's deadline
// the answer is 504 with the event's position: the event is in the log and will be scored
// once, like any other.

func (s *Server) event(w http.ResponseWriter, r *http.Request) outcome {
	if !s.isReady() {
		return writeError(w, r, http.StatusServiceUnavailable, classNotReady, "not ready: the consumer group has not joined yet, or the job is stopping")
	}
	body, out, ok := s.readBody(w, r)
	if !ok {
		return out
	}
	ev := s.d.Events
	key, err := ev.Check.Check(body)
	if err != nil {
		var de *pipeline.DecodeError
		class := string(pipeline.ClassInvalidJSON)
		if errors.As(err, &de) {
			class = string(de.Class)
		}
		return writeError(w, r, http.StatusBadRequest, class, err.Error())
	}
	ctx, cancel, err := s.deadline(r)
	if err != nil {
		return writeError(w, r, http.StatusBadRequest, classBadRequest, err.Error())
	}
	defer cancel()
	explain, hp, msg := s.explainEvent(r)
	if msg != "" {
		return writeError(w, r, http.StatusBadRequest, classBadRequest, msg)
	}

	expecting := ev.Predictions.Expect()
	defer expecting()
	type landed struct {
		partition int32
		offset    int64
		err       error
	}
	acked := make(chan landed, 1)
	ack := func(p int32, o int64, _ time.Time, err error) { acked <- landed{p, o, err} }
	if explain {
		hp.ProduceResultHeaders(ev.Topic, key, body, explainHeader, ack)
	} else {
		ev.Producer.ProduceResult(ev.Topic, key, body, ack)
	}
	var at landed
	select {
	case at = <-acked:
	case <-ctx.Done():
		return writeError(w, r, http.StatusGatewayTimeout, classTimeout,
			"the event was not acknowledged by Kafka within the request's deadline: it may still be written (and then scored once); its offset is unknown")
	}
	if at.err != nil {
		return writeError(w, r, http.StatusServiceUnavailable, classUnavailable,
			fmt.Sprintf("producing the event to %s: %v", ev.Topic, at.err))
	}
	pred, stop := ev.Predictions.Wait(ev.Topic, at.partition, at.offset)
	defer stop()
	expecting()
	select {
	case v := <-pred:
		return writeRaw(w, http.StatusOK, v)
	case <-ctx.Done():
		return writeErrorWith(w, http.StatusGatewayTimeout, classTimeout,
			"the event is written but its prediction did not come within the request's deadline; it will be scored once, and its prediction is on the predictions topic",
			map[string]any{"source": map[string]any{"topic": ev.Topic, "partition": at.partition, "offset": at.offset}})
	}
}
