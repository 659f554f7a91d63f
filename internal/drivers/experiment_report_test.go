package drivers

import (
	"strings"
	"testing"

	"github.com/streamscore/streamscore/internal/evaluate"
)

func TestExperimentJoin(t *testing.T) {
	labels := map[int64]float64{1: 1, 2: 0, 3: 0}
	j := newExperimentJoin("exp", labels)
	pred := func(off int, id, arm, score string) []byte {
		return []byte(`{"source":{"topic":"tx","partition":0,"offset":` + string(rune('0'+off)) + `},"key":"7","id":` + id +
			`,"score":` + score + `,"model":{"name":"fraud","version":"v-` + arm + `"},"experiment":{"name":"exp","arm":"` + arm +
			`"},"event_time":"2018-08-08T00:00:00Z"}`)
	}
	j.add(pred(0, "1", "control", "0.9"))
	j.add(pred(0, "1", "control", "0.9")) // redelivered
	j.add(pred(1, "2", "control", "0.8"))
	j.add(pred(2, `"3"`, "treatment", "0.1"))
	j.add(pred(3, "null", "treatment", "0.7"))
	j.add([]byte(`{"source":{"topic":"tx","partition":0,"offset":9},"id":4,"score":0.5,"experiment":{"name":"other","arm":"control"}}`))
	j.add([]byte(`not json`))
	rep, err := j.report("preds", 0.5)
	if err != nil {
		t.Fatal(err)
	}
	c, tr := rep.Arm(evaluate.Control), rep.Arm(evaluate.Treatment)
	if c.Events != 2 || c.Labelled != 2 || c.TP != 1 || c.FP != 1 || c.Version != "v-control" {
		t.Errorf("control %+v", *c)
	}
	if tr.Events != 2 || tr.Labelled != 1 || tr.TN != 1 || tr.Alerts != 1 {
		t.Errorf("treatment %+v", *tr)
	}
	if rep.Duplicates != 1 || rep.WithoutID != 1 {
		t.Errorf("duplicates %d, without id %d", rep.Duplicates, rep.WithoutID)
	}
	if _, err := newExperimentJoin("nope", labels).report("preds", 0.5); err == nil || !strings.Contains(err.Error(), `experiment "nope"`) {
		t.Errorf("an unknown experiment: %v", err)
	}
	k := newExperimentJoin("typo", labels)
	k.add(pred(0, "1", "control", "0.9"))
	if _, err := k.report("preds", 0.5); err == nil || !strings.Contains(err.Error(), "found there: exp") {
		t.Errorf("an unknown experiment should name the ones found: %v", err)
	}
}
