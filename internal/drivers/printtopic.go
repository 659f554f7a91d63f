package drivers

import (
	"context"
	"io"

	"github.com/streamscore/streamscore/internal/audit"
	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/topics"
)

// PrintTopicOptions say where `streamscore tail` starts and when it stops.
type PrintTopicOptions struct {
	// FromStart reads from the earliest offset instead of the end.
	FromStart bool
	// Limit stops after this many records (0: never).
	Limit int
}

// PrintTopic prints the records of topic to out as they arrive (audit.PrintRecords says
// how), outside any group, until o.Limit records, or ctx ends.
func PrintTopic(ctx context.Context, c *config.Config, topic string, o PrintTopicOptions, out io.Writer) error {
	from := topics.FromEnd
	if o.FromStart {
		from = topics.FromStart
	}
	decode, err := PredictionJSON(c) // output.format avro
	if err != nil {
		return err
	}
	r, err := topics.NewReader(c.Kafka, from, topic)
	if err != nil {
		return err
	}
	defer r.Close()
	return audit.PrintRecordsDecoded(ctx, r, out, o.Limit, decode)
}
