package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/internal/drivers"
)

func newBackfillCmd(g *globalFlags) *cobra.Command {
	var from string
	var jsonOut bool
	o := drivers.BackfillOptions{}
	cmd := &cobra.Command{
		Use:   "backfill",
		Short: "Replay the input topics through the live operator into a topic or a file",
		Long: `backfill replays the input topics (earliest or --from, to the end offsets at its start) through
exactly the operator of 'run' into --out, bit-identical to live scoring (check with 'verify');
--group NAME shares one job between processes. See docs/backfill-and-verify.md.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if o.From, err = parseFrom(from); err != nil {
				return err
			}
			cc, log, err := g.prepare(config.NeedModel)
			if err != nil {
				return err
			}
			if o.Out == "" {
				o.Out = cc.BackfillOut()
			}
			s, err := drivers.Backfill(cmd.Context(), cc, o, log, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if jsonOut {
				return printJSON(cmd.OutOrStdout(), s)
			}
			fmt.Fprint(cmd.OutOrStdout(), s.Text())
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&from, "from", "earliest", "earliest, or the RFC 3339 time of the first record to replay")
	fl.StringVar(&o.Out, "out", "", "topic:NAME or file:PATH (default topic:<topics.backfill>)")
	fl.IntVar(&o.BatchSize, "batch-size", 256, "rows per ONNX Runtime call; scores do not depend on it (256 is the reference model's fastest, see make bench)")
	fl.StringVar(&o.Model, "model", "", "NAME@VERSION: replay with this registry version instead of the ones live scoring used (a what-if)")
	fl.BoolVar(&jsonOut, "json", false, "print the summary as one JSON object")
	fl.StringVar(&o.Group, "group", "", "share this backfill job with every process started with the same NAME (a consumer group of its own)")
	fl.StringVar(&o.Instance, "instance", "", "with --group: this process's stable name in the job, kept across restarts (default instance_id)")
	fl.StringVar(&o.JobTopic, "job-topic", drivers.DefaultJobTopic, "with --group: the compacted topic of the job records")
	return cmd
}

// parseFrom reads a --from flag: earliest (the zero time) or an RFC 3339 time.
func parseFrom(from string) (time.Time, error) {
	if from == "" || from == "earliest" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, from)
	if err != nil {
		return time.Time{}, fmt.Errorf("--from %q: want earliest or an RFC 3339 time such as 2018-07-01T00:00:00Z", from)
	}
	return t, nil
}
