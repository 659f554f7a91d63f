package bench

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/streamscore/streamscore/internal/config"
)

// ScalePoint is a catch-up of stage s: Events events on an input topic of Partitions
// partitions.
type ScalePoint struct {
	Partitions int           `json:"partitions"`
	Events     int           `json:"events"`
	CatchUp    CatchUpResult `json:"catch_up"`
}

// scale is stage s: a catch-up (as stage c, CPU profile and entity gauges included) at
// each size and partition count of the plan, each on fresh topics with a backlog of its
// own, so that every run starts from an empty state.
func (r *runner) scale(ctx context.Context) ([]ScalePoint, error) {
	var out []ScalePoint
	for _, n := range r.plan.Scale.Events {
		for _, parts := range r.plan.Scale.Partitions {
			r.say("(s) scale: catch-up of %d events from %d input partitions", n, parts)
			c := r.topicsFor(fmt.Sprintf("scale%d-%d", parts, n))
			cu, err := r.scalePoint(ctx, c, parts, n)
			if err != nil {
				return nil, err
			}
			out = append(out, ScalePoint{Partitions: parts, Events: n, CatchUp: cu})
		}
	}
	return out, nil
}

// scalePoint is one catch-up of stage s on c's topics, deleted once it is measured: the
// next sizes need the broker's disk and page cache more than these events do.
func (r *runner) scalePoint(ctx context.Context, c *config.Config, parts, n int) (CatchUpResult, error) {
	defer r.dropTopics(c)
	if err := r.produce(ctx, c, parts, n); err != nil {
		return CatchUpResult{}, err
	}
	return catchUp(ctx, r.child, c, n)
}

// printScale writes stage s's lines, then, per partition count measured at two sizes or
// more, how peak RSS grew from the smallest to the largest and by how many entities.
func printScale(tw io.Writer, pts []ScalePoint) {
	for _, p := range pts {
		cu := p.CatchUp
		fmt.Fprintf(tw, "(s) catch-up, %d input partitions, %d events\t%.0f events/s, %.2f CPU us/event%s, peak RSS %.0f MiB, entities: window %.0f, feedback %.0f\n",
			p.Partitions, p.Events, cu.EventsPerSecond, cu.CPUMicrosPerEvt, ortPart(cu.CPU), cu.PeakRSSMiB, cu.WindowEntities, cu.FeedbackEntities)
	}
	byParts := map[int][]ScalePoint{}
	for _, p := range pts {
		byParts[p.Partitions] = append(byParts[p.Partitions], p)
	}
	for _, parts := range slices.Sorted(maps.Keys(byParts)) {
		ps := byParts[parts]
		if len(ps) < 2 {
			continue
		}
		slices.SortFunc(ps, func(a, b ScalePoint) int { return a.Events - b.Events })
		lo, hi := ps[0], ps[len(ps)-1]
		dRSS, dEnt := hi.CatchUp.PeakRSSMiB-lo.CatchUp.PeakRSSMiB, hi.CatchUp.WindowEntities-lo.CatchUp.WindowEntities
		// Per added entity only when the entities grew: the simulator's customers are
		// all seen within days, after which the state grows with the events in the
		// windows, not with entities.
		perEnt := "entities saturated: growth is per event in the windows"
		if dEnt >= 0.1*lo.CatchUp.WindowEntities && dEnt > 0 {
			perEnt = fmt.Sprintf("%.2f KiB per added entity", dRSS*1024/dEnt)
		}
		fmt.Fprintf(tw, "(s) memory growth, %d partitions, %d -> %d events\t%+.0f MiB peak RSS, %+.0f window entities (%s), %.2f KiB per added event\n",
			parts, lo.Events, hi.Events, dRSS, dEnt, perEnt, dRSS*1024/float64(hi.Events-lo.Events))
	}
}

// ortPart is the ORT share of a catch-up's CPU for its line ("" when not profiled).
func ortPart(s *CPUSplit) string {
	if s == nil {
		return ""
	}
	return fmt.Sprintf(" (ORT %.2f, rest %.2f)", s.ORTMicros, s.OtherMicros)
}
