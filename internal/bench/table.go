package bench

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// Print writes r as the bench's table: one line per stage that ran, then the ratios.
func Print(w io.Writer, r *Results) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "machine\t%s\n", r.Machine)
	if r.KafkaCeiling > 0 {
		fmt.Fprintf(tw, "(a) Kafka ceiling (consume->produce copy, %d events)\t%.0f events/s\n", r.Events, r.KafkaCeiling)
	}
	for _, s := range r.Scoring {
		fmt.Fprintf(tw, "(b) ONNX Runtime alone, batch %d\t%.0f rows/s (%.1f us/call)\n", s.Batch, s.RowsPerSecond, s.MicrosPerCall)
	}
	if r.CatchUp.EventsPerSecond > 0 {
		fmt.Fprintf(tw, "(c) catch-up from offset zero (%d events)\t%.0f events/s, %.2f CPU us/event, peak RSS %.0f MiB\n",
			r.Events, r.CatchUp.EventsPerSecond, r.CatchUp.CPUMicrosPerEvt, r.CatchUp.PeakRSSMiB)
		printCPUSplit(tw, r.CatchUp.CPU)
	}
	if e := r.ExactlyOnce; e.EventsPerSecond > 0 {
		fmt.Fprintf(tw, "(f) catch-up with delivery: exactly-once (%d events)\t%.0f events/s, %.2f CPU us/event, peak RSS %.0f MiB\n",
			r.Events, e.EventsPerSecond, e.CPUMicrosPerEvt, e.PeakRSSMiB)
	}
	printLatency(tw, r)
	if r.Backfill > 0 {
		fmt.Fprintf(tw, "(e) backfill into a topic\t%.0f events/s\n", r.Backfill)
	}
	printCascade(tw, r.Cascade)
	printScale(tw, r.Scale)
	if v, ok := r.Ratios[RatioCatchUpOverKafka]; ok {
		fmt.Fprintf(tw, "c/a: catch-up over the Kafka ceiling\t%.2f\n", v)
	}
	if v, ok := r.Ratios[RatioExactlyOnce]; ok {
		fmt.Fprintf(tw, "f/c: exactly-once over at-least-once catch-up\t%.2f\n", v)
	}
	if v, ok := r.Ratios[RatioNonModelMicros]; ok {
		fmt.Fprintf(tw, "per event: model at its best batch / everything else\t%.2f us / %.2f us\n",
			r.Ratios[RatioModelMicrosAtBest], v)
	}
	return tw.Flush()
}

// printCPUSplit writes the catch-up's CPU per event split into ORT and the rest, and how
// ORT's threads are counted.
func printCPUSplit(tw io.Writer, s *CPUSplit) {
	if s == nil {
		return
	}
	fmt.Fprintf(tw, "    CPU/event: total %.2f us, ORT %.2f us, everything else %.2f us (of which TreeSHAP reasons %.2f us)\t(ORT: %.1f%% of %d CPU profile samples; %s)\n",
		s.TotalMicros, s.ORTMicros, s.OtherMicros, s.ReasonsMicros, 100*s.ORTShare, s.Samples, ortThreads(s.IntraOpThreads))
}

// ortThreads says how the profile saw ORT's CPU with threads intra-op threads.
func ortThreads(threads int) string {
	if threads <= 1 {
		return "1 intra-op thread: ORT runs on the scoring goroutine's thread, in its cgo call, and its samples carry that Go stack"
	}
	return fmt.Sprintf("%d intra-op threads: ORT's pool threads are not Go threads and the profile misses them, so ORT reads low", threads)
}

// printLatency writes the lines of stage (d): each offered load, with the labels-flowing
// and Kafka-floor measurements at the same load beneath it. Results of before the repeats
// (no LatencySteps) print as they did.
func printLatency(tw io.Writer, r *Results) {
	if len(r.LatencySteps) > 0 {
		printSteps(tw, r.LatencySteps)
		return
	}
	for i, l := range r.Latency {
		var floor *LatencyPoint
		if i < len(r.KafkaLatency) {
			floor = &r.KafkaLatency[i]
		}
		fmt.Fprintf(tw, "(d) offered %.0f events/s (achieved %.0f, %d events), labels idle\tp50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, peak RSS %.0f MiB%s\n",
			l.Offered, l.Achieved, l.Events, l.P50Ms, l.P99Ms, l.P999Ms, l.PeakRSS, overFloor(l, floor))
		printStages(tw, l.Stages)
		if i < len(r.LatencyLabels) {
			k := r.LatencyLabels[i]
			fmt.Fprintf(tw, "    with labels flowing (each a simulated week after its event)\tp50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, peak RSS %.0f MiB%s\n",
				k.P50Ms, k.P99Ms, k.P999Ms, k.PeakRSS, overFloor(k, floor))
			printStages(tw, k.Stages)
		}
		if floor != nil {
			fmt.Fprintf(tw, "    Kafka floor (relay, no decoding, no model)\tp50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms\n", floor.P50Ms, floor.P99Ms, floor.P999Ms)
		}
	}
}

// overFloor is the difference of l to the Kafka floor at the same load, for its line.
func overFloor(l LatencyPoint, floor *LatencyPoint) string {
	if floor == nil || floor.Events == 0 {
		return ""
	}
	return fmt.Sprintf("; over the floor: p50 %+.2f ms, p99 %+.2f ms, p99.9 %+.2f ms",
		l.P50Ms-floor.P50Ms, l.P99Ms-floor.P99Ms, l.P999Ms-floor.P999Ms)
}

// printSteps writes each load of stage d: the medians over its runs of streamscore minus
// the floor, with their range, then the median figures of each subject and its stages.
func printSteps(tw io.Writer, steps []LatencyStep) {
	for _, s := range steps {
		fmt.Fprintf(tw, "(d) offered %.0f events/s, %d runs, streamscore - Kafka floor, median [min..max] (IQR)\tlabels idle: p50 %s, p99 %s; labels flowing: p50 %s, p99 %s\n",
			s.Offered, len(s.Runs), s.IdleOver.P50, s.IdleOver.P99, s.FlowingOver.P50, s.FlowingOver.P99)
		for _, m := range []struct {
			what string
			p    LatencyPoint
		}{{"labels idle", s.Idle}, {"labels flowing (each a simulated week after its event)", s.Flowing}} {
			fmt.Fprintf(tw, "    %s, medians (achieved %.0f/s, %d events)\tp50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, peak RSS %.0f MiB\n",
				m.what, m.p.Achieved, m.p.Events, m.p.P50Ms, m.p.P99Ms, m.p.P999Ms, m.p.PeakRSS)
			printStages(tw, m.p.Stages)
		}
		f := s.Floor
		fmt.Fprintf(tw, "    Kafka floor (relay, no decoding, no model), medians\tp50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms\n", f.P50Ms, f.P99Ms, f.P999Ms)
	}
}

// String is a Spread for the table: "+1.20 ms [+0.80..+2.00] (IQR +1.00..+1.50)".
func (s Spread) String() string {
	return fmt.Sprintf("%+.2f ms [%+.2f..%+.2f] (IQR %+.2f..%+.2f)", s.Median, s.Min, s.Max, s.Q1, s.Q3)
}

// printStages writes the pipeline's stage times beneath its latency line.
func printStages(tw io.Writer, stages []StagePoint) {
	for _, s := range stages {
		fmt.Fprintf(tw, "      stage %s\tmean %.3f ms, p50 %.3f ms, p99 %.3f ms (%d records)\n", s.Stage, s.MeanMs, s.P50Ms, s.P99Ms, s.Count)
	}
}
