package bench

import (
	"strings"
	"testing"
)

func TestParseGauges(t *testing.T) {
	g, err := parseGauges(strings.NewReader(`# HELP streamscore_window_state_entities Entities.
# TYPE streamscore_window_state_entities gauge
streamscore_window_state_entities 5123
streamscore_feedback_entities 4.5e+03
streamscore_stage_seconds_bucket{stage="queue",le="0.001"} 60
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(g) != 2 || g["streamscore_window_state_entities"] != 5123 || g["streamscore_feedback_entities"] != 4500 {
		t.Errorf("gauges %v", g)
	}
}

func TestPrintScale(t *testing.T) {
	cu := func(rss, entities float64) CatchUpResult {
		return CatchUpResult{EventsPerSecond: 20_000, CPUMicrosPerEvt: 18, PeakRSSMiB: rss, WindowEntities: entities,
			FeedbackEntities: 100, CPU: &CPUSplit{ORTMicros: 3, OtherMicros: 15}}
	}
	var b strings.Builder
	printScale(&b, []ScalePoint{
		{Partitions: 3, Events: 5_000_000, CatchUp: cu(400, 6000)},
		{Partitions: 1, Events: 1_000_000, CatchUp: cu(150, 5000)},
		{Partitions: 1, Events: 2_000_000, CatchUp: cu(170, 5100)},
		{Partitions: 3, Events: 1_000_000, CatchUp: cu(200, 5000)},
	})
	for _, want := range []string{
		"(s) catch-up, 1 input partitions, 1000000 events\t20000 events/s, 18.00 CPU us/event (ORT 3.00, rest 15.00), peak RSS 150 MiB, entities: window 5000, feedback 100",
		// 200 MiB more for 4M events and 1000 entities more.
		"(s) memory growth, 3 partitions, 1000000 -> 5000000 events\t+200 MiB peak RSS, +1000 window entities (204.80 KiB per added entity), 0.05 KiB per added event",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
	if want := "(s) memory growth, 1 partitions, 1000000 -> 2000000 events\t+20 MiB peak RSS, +100 window entities (entities saturated: growth is per event in the windows), 0.02 KiB per added event"; !strings.Contains(b.String(), want) {
		t.Errorf("table lacks %q:\n%s", want, b.String())
	}
	var one strings.Builder
	printScale(&one, []ScalePoint{{Partitions: 1, Events: 1000, CatchUp: cu(150, 5000)}})
	if strings.Contains(one.String(), "memory growth") {
		t.Errorf("a growth line from one size:\n%s", one.String())
	}
}
