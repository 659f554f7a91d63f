//go:build !integration

package drivers

import "testing"

// TestDriftGaugesOnTheReferenceWorkload: with the shipped config (streamscore.yaml) on the
// embedded broker, the handbook simulator's stream over 3 partitions, scored by a live job
// catching up from earliest and replayed by a backfill, sets the PSI gauge of every
// feature of the reference and of the score. The stream's first day (a Sunday) is its
// first drift window; 11,000 events reach into Monday on every partition, which closes it.
// Live and the backfill write the same drift records and show the same gauges.
func TestDriftGaugesOnTheReferenceWorkload(t *testing.T) {
	checkDriftGaugesOnTheReferenceWorkload(t, embeddedBroker(t))
}
