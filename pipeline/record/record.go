// Package record holds the values that cross the boundary between the operator and
// Kafka: input records, outputs, partitions and commit positions, and the names of the
// dead-letter headers. It exists so that topics (all Kafka I/O) can speak the operator's
// language without importing the operator: arrows run cmd → drivers → pipeline and
// drivers → topics → record, never topics → pipeline.
package record

import "time"

// Record is one input record.
type Record struct {
	Topic       string
	Partition   int32
	Offset      int64
	LeaderEpoch int32
	Key         []byte
	Value       []byte
	Timestamp   time.Time
	Headers     []Header
}

// Header is a record header.
type Header struct {
	Key   string
	Value []byte
}

// Output is one record for a sink. The sink may keep the slices until it acknowledges.
type Output struct {
	Topic   string
	Key     []byte
	Value   []byte
	Headers []Header
	// Source is the input record that caused the output (file sinks write it; topic sinks
	// ignore it, since the value carries it).
	Source *Record
	// Features is the model input of a prediction or alert (nil for a dead letter), and
	// EventTime the event's time: sinks that write training sets read them instead of
	// decoding Value. Both stay valid until the output is acknowledged.
	Features  []float32
	EventTime time.Time
}

// Acker is told the outcome of one output: Ack is called exactly once, from any
// goroutine, with nil once the output is durably written or with why it definitely
// failed. It is the allocation-free form of a sink's ack func (see AckProducer): the
// operator hands each output's own state as the Acker instead of a new closure.
type Acker interface {
	Ack(err error)
}

// AckProducer is a sink that reports acknowledgements to an Acker. The operator uses it
// instead of Produce(out, ack func(error)) when its sink has it; the contract is the same.
// A sink that wraps another must not promote the inner sink's ProduceAck past its own
// Produce (embed the sink interface, not the concrete type), or its Produce is bypassed.
type AckProducer interface {
	ProduceAck(out *Output, a Acker)
}

// TopicPartition names one partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// Offset is a commit position: the next offset to consume, with the leader epoch of the
// last record it covers.
type Offset struct {
	TopicPartition
	Offset      int64
	LeaderEpoch int32
}

// FeedbackPoll is one poll of the feedback (labels) topic.
type FeedbackPoll struct {
	Records  []Record
	Progress []FeedbackProgress
}

// FeedbackProgress says a bounded source has read the whole partition: nothing follows.
type FeedbackProgress struct {
	Partition int32
	Ended     bool
}

// The headers of a dead letter: why it was rejected and where it came from. Consumers of
// the dead-letter topic, the demo's audit and the file sink all read these names.
const (
	HeaderErrorClass      = "error.class"
	HeaderErrorMessage    = "error.message"
	HeaderSourceTopic     = "source.topic"
	HeaderSourcePartition = "source.partition"
	HeaderSourceOffset    = "source.offset"
)

// HeaderValue returns the value of the first header named key, or nil.
func HeaderValue(hs []Header, key string) []byte {
	for _, h := range hs {
		if h.Key == key {
			return h.Value
		}
	}
	return nil
}

// HeaderModelVersion names the model version that scored an output (for a dead letter:
// the live version when it was rejected), beside the version in the prediction's JSON.
const HeaderModelVersion = "model.version"
