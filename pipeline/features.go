package pipeline

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// Transform is a stateless function of one field.
type Transform string

// The stateless transforms.
const (
	TransformNone    Transform = ""        // the field's numeric value
	TransformLog1p   Transform = "log1p"   // log(1+x), for amounts; x must be > -1
	TransformWeekend Transform = "weekend" // time field: 1 on Saturday or Sunday (UTC), else 0
	TransformNight   Transform = "night"   // time field: 1 when the UTC hour is <= 6 (00:00–06:59), else 0
	TransformHour    Transform = "hour"    // time field: UTC hour, 0–23
	TransformWeekday Transform = "weekday" // time field: day of week, Sunday = 0
	TransformLookup  Transform = "lookup"  // categorical: Lookup[value], or Default when absent
)

// Feature is one column of the model input, computed from one field of the event.
type Feature struct {
	Name      string    `yaml:"name"`
	Field     string    `yaml:"field"`
	Transform Transform `yaml:"transform,omitempty"`
	// Default is used when the (optional) field is absent, or for a lookup miss. When
	// it is not set, an absent field makes the event unscorable.
	Default *float64 `yaml:"default,omitempty"`
	// Lookup maps categorical values (strings, or integers written in decimal) to numbers.
	Lookup map[string]float64 `yaml:"lookup,omitempty"`
	// Window, when set, makes the feature an aggregate over the entity's rows in an
	// event-time window (window.go); Field is then the aggregated field.
	Window *Window `yaml:"window,omitempty"`
	// TableLookup, when set, makes the feature a point-in-time lookup in a reference
	// table (lookup.go); in YAML it is `lookup: {table: ...}`.
	TableLookup *TableLookup `yaml:"-"`

	field int
	typ   FieldType
}

// FeatureSpec maps a decoded event to the model's input vector, in order. Stateless
// features depend only on the event; window features on the event and the logs before it
// (its partition's earlier events, the feedback topic by event time): never on the wall
// clock, the batch or the arrival order.
type FeatureSpec struct {
	Features []Feature
	// Feedback describes the feedback records that feedback windows read; it must be
	// compiled (Schema.Compile) before the spec.
	Feedback *FeedbackConfig
	// Tables are the reference tables that lookup features read; each must be compiled
	// (TableConfig.Compile) before the spec.
	Tables []*TableConfig

	groups  []*windowGroup
	lookups []*tableLookup
}

// Names lists the feature names in input order.
func (fs *FeatureSpec) Names() []string {
	names := make([]string, len(fs.Features))
	for i, f := range fs.Features {
		names[i] = f.Name
	}
	return names
}

// Len is the width of the vector.
func (fs *FeatureSpec) Len() int { return len(fs.Features) }

// Compile resolves fields against the schema and rejects impossible features.
func (fs *FeatureSpec) Compile(s *Schema) error {
	if len(fs.Features) == 0 {
		return fmt.Errorf("features: none listed")
	}
	seen := map[string]bool{}
	fs.groups, fs.lookups = nil, nil
	for i := range fs.Features {
		f := &fs.Features[i]
		if f.Name == "" {
			return fmt.Errorf("features[%d]: no name", i)
		}
		if seen[f.Name] {
			return fmt.Errorf("features: %q is listed twice", f.Name)
		}
		seen[f.Name] = true
		if f.TableLookup != nil {
			if err := fs.compileLookup(i, f, s); err != nil {
				return err
			}
			continue
		}
		if f.Window != nil {
			f.field = -1
			if err := fs.compileWindow(i, f, s); err != nil {
				return err
			}
			continue
		}
		if err := f.compileStateless(s); err != nil {
			return err
		}
	}
	return nil
}

// compileStateless resolves a feature computed from its event alone.
func (f *Feature) compileStateless(s *Schema) error {
	f.field = s.FieldIndex(f.Field)
	if f.field < 0 {
		return fmt.Errorf("feature %s: field %q is not in the schema", f.Name, f.Field)
	}
	f.typ = s.Fields[f.field].Type
	switch f.Transform {
	case TransformNone, TransformLog1p:
		if f.typ != TypeInt && f.typ != TypeFloat {
			return fmt.Errorf("feature %s: transform %q needs a numeric field, %s is %s", f.Name, f.Transform, f.Field, f.typ)
		}
	case TransformWeekend, TransformNight, TransformHour, TransformWeekday:
		if f.typ != TypeTime {
			return fmt.Errorf("feature %s: transform %q needs a time field, %s is %s", f.Name, f.Transform, f.Field, f.typ)
		}
	case TransformLookup:
		if f.typ != TypeString && f.typ != TypeInt {
			return fmt.Errorf("feature %s: lookup needs a string or int field, %s is %s", f.Name, f.Field, f.typ)
		}
		if len(f.Lookup) == 0 {
			return fmt.Errorf("feature %s: transform lookup needs a lookup table", f.Name)
		}
	default:
		return fmt.Errorf("feature %s: unknown transform %q (want log1p, weekend, night, hour, weekday or lookup)", f.Name, f.Transform)
	}
	if f.Default == nil && !s.Fields[f.field].Required && f.Transform != TransformLookup {
		return fmt.Errorf("feature %s: field %s is optional, so the feature needs a default", f.Name, f.Field)
	}
	return nil
}

// Extract writes the stateless features of ev into dst (len >= Len()); window features are
// the operator's to fill (they need state). The error, when not nil, is a *DecodeError.
func (fs *FeatureSpec) Extract(ev *Event, dst []float32) error {
	for i := range fs.Features {
		f := &fs.Features[i]
		if f.field < 0 {
			continue // a window or a lookup
		}
		if !ev.Has(f.field) {
			if f.Default == nil {
				return badEvent(ClassMissingField, f.Field, "absent, and feature %s has no default", f.Name)
			}
			dst[i] = float32(*f.Default)
			continue
		}
		var x float64
		switch f.Transform {
		case TransformNone:
			x = ev.Num[f.field]
		case TransformLog1p:
			v := ev.Num[f.field]
			if v <= -1 {
				return badEvent(ClassFeature, f.Field, "log1p of %v is undefined (feature %s)", v, f.Name)
			}
			x = math.Log1p(v)
		case TransformWeekend:
			switch eventTime(ev, f.field).Weekday() {
			case time.Saturday, time.Sunday:
				x = 1
			}
		case TransformNight:
			if eventTime(ev, f.field).Hour() <= 6 {
				x = 1
			}
		case TransformHour:
			x = float64(eventTime(ev, f.field).Hour())
		case TransformWeekday:
			x = float64(eventTime(ev, f.field).Weekday())
		case TransformLookup:
			var key string
			if f.typ == TypeString {
				key = ev.Str[f.field]
			} else {
				key = strconv.FormatInt(ev.Int[f.field], 10)
			}
			v, ok := f.Lookup[key]
			switch {
			case ok:
				x = v
			case f.Default != nil:
				x = *f.Default
			}
		}
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return badEvent(ClassFeature, f.Field, "feature %s is not finite", f.Name)
		}
		dst[i] = float32(x)
	}
	return nil
}

func eventTime(ev *Event, field int) time.Time {
	return time.Unix(0, ev.Int[field]).UTC()
}
