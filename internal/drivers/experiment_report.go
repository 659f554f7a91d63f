package drivers

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/streamscore/streamscore/internal/config"
	"github.com/streamscore/streamscore/internal/evaluate"
	"github.com/streamscore/streamscore/pipeline/record"
	"github.com/streamscore/streamscore/topics"
)

// ExperimentReport judges experiment name against the labels: it reads c's predictions
// topic and labels topic whole (to the end offsets seen when it starts), joins the
// experiment's predictions with the labels by event id and computes the per-arm figures
// at c's threshold. An experiment that no prediction carries is an error naming the
// experiments that the topic does carry.
func ExperimentReport(ctx context.Context, c *config.Compiled, name string, log *zap.Logger) (*evaluate.Report, error) {
	if name == "" {
		return nil, fmt.Errorf("experiment report: name the experiment (streamscore experiment list shows them)")
	}
	labels, err := readLabels(ctx, c, c.Kafka, log)
	if err != nil {
		return nil, err
	}
	j := newExperimentJoin(name, labels)
	err = topics.ReadToEnd(ctx, c.Kafka, []string{c.Topics.Predictions}, func(recs []record.Record) error {
		for i := range recs {
			j.add(recs[i].Value)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading predictions from %s: %w", c.Topics.Predictions, err)
	}
	return j.report(c.Topics.Predictions, c.Threshold)
}

// experimentJoin collects an experiment's predictions, each input record once, joined
// with the labels by event id.
type experimentJoin struct {
	name       string
	labels     map[int64]float64
	seen       map[predSource]bool
	others     map[string]int64 // predictions of other experiments, by name
	rows       []evaluate.Row
	withoutID  int64
	duplicates int64
}

type predSource struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
}

// experimentPrediction is the part of a prediction (docs/topics-and-formats.md) the
// report reads.
type experimentPrediction struct {
	Source     predSource               `json:"source"`
	ID         json.RawMessage          `json:"id"`
	Key        *string                  `json:"key"`
	Score      float64                  `json:"score"`
	Model      struct{ Version string } `json:"model"`
	EventTime  time.Time                `json:"event_time"`
	Experiment *struct {
		Name string `json:"name"`
		Arm  string `json:"arm"`
	} `json:"experiment"`
}

func newExperimentJoin(name string, labels map[int64]float64) *experimentJoin {
	return &experimentJoin{name: name, labels: labels, seen: map[predSource]bool{}, others: map[string]int64{}}
}

// add takes one value of the predictions topic; values that are not routed predictions
// (dead letters in a shared topic, predictions outside any experiment) are skipped.
func (j *experimentJoin) add(value []byte) {
	var p experimentPrediction
	if json.Unmarshal(value, &p) != nil || p.Experiment == nil {
		return
	}
	if p.Experiment.Name != j.name {
		j.others[p.Experiment.Name]++
		return
	}
	if j.seen[p.Source] {
		j.duplicates++ // a redelivered prediction of an input already counted
		return
	}
	j.seen[p.Source] = true
	row := evaluate.Row{Arm: p.Experiment.Arm, Version: p.Model.Version, Score: p.Score, EventTime: p.EventTime}
	if p.Key != nil {
		row.Card = *p.Key
	}
	id, err := strconv.ParseInt(strings.Trim(string(p.ID), `"`), 10, 64)
	if len(p.ID) == 0 || err != nil {
		j.withoutID++
	} else {
		row.ID = strconv.FormatInt(id, 10)
		y, ok := j.labels[id]
		row.Labelled, row.Fraud = ok, ok && y == 1
	}
	j.rows = append(j.rows, row)
}

func (j *experimentJoin) report(topic string, threshold float64) (*evaluate.Report, error) {
	if len(j.rows) == 0 {
		names := make([]string, 0, len(j.others))
		for n := range j.others {
			names = append(names, n)
		}
		sort.Strings(names)
		carried := "none"
		if len(names) > 0 {
			carried = strings.Join(names, ", ")
		}
		return nil, fmt.Errorf("no prediction on %s carries experiment %q (experiments found there: %s): check the name with 'streamscore experiment list', and that the experiment has scored events", topic, j.name, carried)
	}
	rep := evaluate.Build(j.name, j.rows, evaluate.Options{Threshold: threshold, K: 100})
	rep.WithoutID, rep.Duplicates = j.withoutID, j.duplicates
	return rep, nil
}
