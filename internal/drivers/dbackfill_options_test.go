//go:build !integration

package drivers

import (
	"strings"
	"testing"

	"github.com/streamscore/streamscore/internal/config"
)

// TestGroupBackfillRefusesWhatItCannotShare: the options a distributed backfill cannot
// honour fail before anything connects, saying what to change.
func TestGroupBackfillRefusesWhatItCannotShare(t *testing.T) {
	c := testConfig(t, []string{"127.0.0.1:1"})
	cc, err := c.Validate(config.Needs{Kafka: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		o    BackfillOptions
		kind string
		want string // "" : accepted
	}{
		{BackfillOptions{Group: "job", Out: "file:/tmp/x"}, "file", "use --out topic:NAME"},
		{BackfillOptions{Group: c.Group, Out: "topic:x"}, "topic", "live consumer group"},
		{BackfillOptions{Instance: "a", Out: "topic:x"}, "topic", "needs --group"},
		{BackfillOptions{Group: "job", Instance: "a", Out: "topic:x"}, "topic", ""},
		{BackfillOptions{Out: "file:/tmp/x"}, "file", ""},
	} {
		err := checkGroupBackfill(cc, tc.o, tc.kind)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: %v, want %q", tc.o, err, tc.want)
		}
	}
}
