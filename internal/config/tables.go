package config

import (
	"github.com/streamscore/streamscore/pipeline"
	"github.com/streamscore/streamscore/topics"
)

// compileTables checks tables: (the reference tables of lookup features) and returns them
// compiled, adding every problem to p.
func (c *Config) compileTables(p *problems) []*pipeline.TableConfig {
	var out []*pipeline.TableConfig
	seen := map[string]bool{}
	for i := range c.Tables {
		tc := c.Tables[i] // a copy: Compile fills in defaults
		if err := tc.Compile(); err != nil {
			p.err(err)
			continue
		}
		if seen[tc.Name] {
			p.add("tables: %q is listed twice", tc.Name)
			continue
		}
		seen[tc.Name] = true
		if tc.DeadLetter == "" {
			p.add("tables.%s.dead_letter: name the topic for the table's rows that fail validation", tc.Name)
		}
		for _, in := range c.Topics.Input {
			if tc.Topic == in {
				p.add("tables.%s.topic %q is an input topic: a table has a topic of its own", tc.Name, tc.Topic)
			}
		}
		if tc.Topic == c.Topics.Labels {
			p.add("tables.%s.topic %q is the labels topic: a table has a topic of its own", tc.Name, tc.Topic)
		}
		out = append(out, &tc)
	}
	return out
}

// TableOptions are the readers of the tables that lookups read, by table name, each read
// whole from the start of its topic (to the end offsets seen at start when Bounded).
func (c *Compiled) TableOptions(e Extent) map[string]topics.FeedbackOptions {
	out := map[string]topics.FeedbackOptions{}
	for _, tc := range c.Features.UsedTables() {
		out[tc.Name] = topics.FeedbackOptions{Topic: tc.Topic, Bounded: e == Bounded}
	}
	return out
}

// TableDeadLetters lists the dead-letter topics of the tables that lookups read.
func (c *Compiled) TableDeadLetters() []string {
	var out []string
	for _, tc := range c.Features.UsedTables() {
		out = append(out, tc.DeadLetter)
	}
	return out
}
