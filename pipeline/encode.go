package pipeline

import (
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

// Prediction is the decoded form of a prediction record, for readers such as verify and
// the tests. The operator itself writes predictions with AppendPrediction.
type Prediction struct {
	Source struct {
		Topic     string `json:"topic"`
		Partition int32  `json:"partition"`
		Offset    int64  `json:"offset"`
	} `json:"source"`
	Key *string `json:"key"`
	// ID is the event's id field (pipeline.Config.IDField) as the event had it; null
	// when none.
	ID    json.RawMessage `json:"id"`
	Score float32         `json:"score"`
	Model struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	} `json:"model"`
	// Experiment is the experiment and arm that routed the event; nil: none.
	Experiment *ExperimentArm `json:"experiment,omitempty"`
	// Ensemble holds the members' scores of an ensemble's prediction; nil: none.
	Ensemble *EnsembleScores `json:"ensemble,omitempty"`
	// Cascade says which stage of a cascade decided; nil: none.
	Cascade   *CascadeStages `json:"cascade,omitempty"`
	EventTime time.Time      `json:"event_time"`
	ScoredAt  time.Time      `json:"scored_at"`
	// Features is the model input, when the operator is configured to include it.
	Features []float32 `json:"features,omitempty"`
	// BaseValue, Reasons and OtherContribution explain an alerting row (ExplainConfig).
	BaseValue         *float64 `json:"base_value,omitempty"`
	Reasons           []Reason `json:"reasons,omitempty"`
	OtherContribution float64  `json:"other_contribution,omitempty"`
}

// predictionEncoder appends prediction JSON without reflection or allocation beyond dst.
type predictionEncoder struct {
	modelJSON []byte // `"model":{"name":…,"version":…}` prepared once
	scoredAt  time.Time
	scoredStr []byte // scoredAt formatted: a batch's predictions share it
}

func newPredictionEncoder(name, version string) *predictionEncoder {
	b := []byte(`"model":{"name":`)
	b = appendJSONString(b, []byte(name))
	b = append(b, `,"version":`...)
	b = appendJSONString(b, []byte(version))
	b = append(b, '}')
	return &predictionEncoder{modelJSON: b}
}

// AppendPrediction appends one prediction in the public format of DESIGN.md. The score is
// written as the shortest decimal that parses back to the same float32, so readers recover
// the exact bits.
// id is the event's id; extra are the JSON members of the row's annotations (Annotated),
// written after "model".
func (e *predictionEncoder) append(dst []byte, topic string, partition int32, offset int64, key []byte, id eventID,
	score float32, eventTime, scoredAt time.Time, features []float32, extra []byte) []byte {
	dst = append(dst, `{"source":{"topic":`...)
	dst = appendJSONString(dst, []byte(topic))
	dst = append(dst, `,"partition":`...)
	dst = strconv.AppendInt(dst, int64(partition), 10)
	dst = append(dst, `,"offset":`...)
	dst = strconv.AppendInt(dst, offset, 10)
	dst = append(dst, `},"key":`...)
	if key == nil {
		dst = append(dst, "null"...)
	} else {
		dst = appendJSONString(dst, key)
	}
	dst = append(dst, `,"id":`...)
	dst = id.appendJSON(dst)
	dst = append(dst, `,"score":`...)
	dst = strconv.AppendFloat(dst, float64(score), 'g', -1, 32)
	dst = append(dst, ',')
	dst = append(dst, e.modelJSON...)
	dst = append(dst, extra...)
	dst = append(dst, `,"event_time":"`...)
	dst = appendRFC3339NanoUTC(dst, eventTime)
	dst = append(dst, `","scored_at":"`...)
	if !scoredAt.Equal(e.scoredAt) || e.scoredStr == nil {
		e.scoredAt, e.scoredStr = scoredAt, scoredAt.UTC().AppendFormat(e.scoredStr[:0], "2006-01-02T15:04:05.000000Z07:00")
	}
	dst = append(dst, e.scoredStr...)
	dst = append(dst, '"')
	if features != nil {
		dst = append(dst, `,"features":[`...)
		for i, x := range features {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = strconv.AppendFloat(dst, float64(x), 'g', -1, 32)
		}
		dst = append(dst, ']')
	}
	dst = append(dst, '}')
	return dst
}

// appendRFC3339NanoUTC appends t in UTC as time.RFC3339Nano does, without its general
// layout interpreter.
func appendRFC3339NanoUTC(dst []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(dst, time.RFC3339Nano)
	}
	hour, min, sec := t.Clock()
	dst = append(dst, byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10), '-',
		byte('0'+int(month)/10), byte('0'+int(month)%10), '-', byte('0'+day/10), byte('0'+day%10), 'T',
		byte('0'+hour/10), byte('0'+hour%10), ':', byte('0'+min/10), byte('0'+min%10), ':', byte('0'+sec/10), byte('0'+sec%10))
	if ns := t.Nanosecond(); ns != 0 {
		var frac [10]byte
		frac[0] = '.'
		for i := 9; i >= 1; i-- {
			frac[i] = byte('0' + ns%10)
			ns /= 10
		}
		n := 10
		for frac[n-1] == '0' {
			n--
		}
		dst = append(dst, frac[:n]...)
	}
	return append(dst, 'Z')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendJSONString(dst, s []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
