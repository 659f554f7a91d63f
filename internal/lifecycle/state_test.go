//go:build !integration

package lifecycle

import (
	"strings"
	"testing"

	"github.com/streamscore/streamscore/topics"
)

func live(v string) topics.Activation {
	return topics.Activation{Name: "fraud", Version: v, Role: topics.RoleLive, Reason: topics.ReasonActivate}
}

func rollback(v string) topics.Activation {
	a := live(v)
	a.Reason = topics.ReasonRollback
	return a
}

func TestState(t *testing.T) {
	shadow := func(v string) topics.Activation {
		return topics.Activation{Name: "fraud", Version: v, Role: topics.RoleShadow, Reason: topics.ReasonActivate}
	}
	shadowOff := topics.Activation{Name: "fraud", Role: topics.RoleShadowOff, Reason: topics.ReasonActivate}
	for _, tc := range []struct {
		name         string
		log          []topics.Activation
		live, shadow string
		previous     string // "" when Rollback has nowhere to go
		stack        int
	}{
		{"empty log", nil, "", "", "", 0},
		{"first activation", []topics.Activation{live("a")}, "a", "", "", 1},
		{"switches", []topics.Activation{live("a"), live("b"), live("c")}, "c", "", "b", 3},
		{"re-activating the live version changes nothing",
			[]topics.Activation{live("a"), live("b"), live("b")}, "b", "", "a", 2},
		{"rollback pops", []topics.Activation{live("a"), live("b"), live("c"), rollback("b")}, "b", "", "a", 2},
		{"rollbacks walk back", []topics.Activation{live("a"), live("b"), live("c"), rollback("b"), rollback("a")}, "a", "", "", 1},
		{"activation after rollback pushes again",
			[]topics.Activation{live("a"), live("b"), rollback("a"), live("c")}, "c", "", "a", 2},
		{"a rollback that raced another writer is a switch",
			[]topics.Activation{live("a"), live("b"), rollback("c")}, "c", "", "b", 3},
		{"shadow", []topics.Activation{live("a"), shadow("b")}, "a", "b", "", 1},
		{"shadow replaced then off",
			[]topics.Activation{shadow("b"), shadow("c"), live("a"), shadowOff}, "a", "", "", 1},
		{"shadow promoted keeps shadowing until turned off",
			[]topics.Activation{live("a"), shadow("b"), live("b")}, "b", "b", "a", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			other := topics.Activation{Name: "churn", Version: "z", Role: topics.RoleLive}
			s := State(append([]topics.Activation{other}, tc.log...))
			f := s["fraud"]
			if f.Live.Version != tc.live || f.Shadow.Version != tc.shadow || len(f.LiveStack) != tc.stack {
				t.Fatalf("live %q shadow %q stack %d, want %q %q %d", f.Live.Version, f.Shadow.Version, len(f.LiveStack), tc.live, tc.shadow, tc.stack)
			}
			prev, ok := f.PreviousLive()
			if ok != (tc.previous != "") || prev.Version != tc.previous {
				t.Fatalf("previous live %q (%v), want %q", prev.Version, ok, tc.previous)
			}
			if s["churn"].Live.Version != "z" {
				t.Fatalf("another model's state leaked: %+v", s["churn"])
			}
		})
	}
}

func TestResolve(t *testing.T) {
	models := []topics.ModelMeta{
		{Name: "fraud", Version: "3f2a9c1e"}, {Name: "fraud", Version: "3f77aa00"}, {Name: "churn", Version: "12345678"},
	}
	for _, tc := range []struct{ in, want, says string }{
		{"3f2a", "3f2a9c1e", ""},
		{"3f77aa00", "3f77aa00", ""},
		{"3f", "", "matches versions 3f2a9c1e, 3f77aa00 of fraud; give more digits"},
		{"1234", "", "the registry holds 3f2a9c1e, 3f77aa00; push the model first or pick one of those"},
		{"", "", "the registry holds 3f2a9c1e, 3f77aa00"},
	} {
		got, err := resolve(models, "fraud", tc.in)
		if tc.says == "" {
			if err != nil || got != tc.want {
				t.Errorf("%q: got %q, %v; want %q", tc.in, got, err, tc.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%q: got %q, %v; want an error saying %q", tc.in, got, err, tc.says)
		}
	}
	if _, err := resolve(models, "spam", "1"); err == nil || !strings.Contains(err.Error(), "push one first") {
		t.Errorf("unknown model: %v", err)
	}
}
