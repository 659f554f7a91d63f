package sim

import (
	"bytes"
	"math/rand/v2"
	"strings"
)

// BadKinds are the classes of malformed event the generator mixes in; each one must be
// dead-lettered by the operator under the streamscore.yaml schema.
var BadKinds = []string{
	"truncated_json", "invalid_utf8", "missing_field", "wrong_type", "non_finite",
	"negative_amount", "absurd_amount", "oversize", "empty", "not_object",
	"duplicate_key", "deep_nesting", "bad_time", "null_required",
}

// Corruptor turns events into malformed ones at a given fraction, deterministically for a
// seed, with its own random stream so the good events do not depend on the fraction.
type Corruptor struct {
	rng      *rand.Rand
	fraction float64
	n        int
}

// NewCorruptor returns a Corruptor that corrupts about fraction of the events.
func NewCorruptor(seed uint64, fraction float64) *Corruptor {
	return &Corruptor{rng: rand.New(rand.NewPCG(seed^0xbad, seed+0xbad)), fraction: fraction}
}

// Maybe returns a malformed version of event and its kind, or (event, "") unchanged.
func (c *Corruptor) Maybe(event []byte) ([]byte, string) {
	if c.fraction <= 0 || c.rng.Float64() >= c.fraction {
		return event, ""
	}
	kind := BadKinds[c.n%len(BadKinds)]
	c.n++
	return Corrupt(kind, event), kind
}

// Corrupt returns a malformed copy of a well-formed event of the given kind.
func Corrupt(kind string, event []byte) []byte {
	s := string(event)
	switch kind {
	case "truncated_json":
		return []byte(s[:len(s)/2])
	case "invalid_utf8":
		return []byte(strings.Replace(s, `"tx_datetime"`, "\"tx_\xff\xfedatetime\"", 1))
	case "missing_field":
		return []byte(replaceField(s, "tx_amount", ""))
	case "wrong_type":
		return []byte(replaceField(s, "tx_amount", `"tx_amount":"12.50 EUR"`))
	case "non_finite":
		return []byte(replaceField(s, "tx_amount", `"tx_amount":1e999`))
	case "negative_amount":
		return []byte(replaceField(s, "tx_amount", `"tx_amount":-42.00`))
	case "absurd_amount":
		return []byte(replaceField(s, "tx_amount", `"tx_amount":123456789012.00`))
	case "oversize":
		return []byte(strings.Replace(s, "{", `{"padding":"`+strings.Repeat("x", 100<<10)+`",`, 1))
	case "empty":
		return []byte{}
	case "not_object":
		return []byte("[" + s + "]")
	case "duplicate_key":
		return []byte(strings.Replace(s, "{", `{"tx_amount":1.00,`, 1))
	case "deep_nesting":
		return []byte(strings.Replace(s, "{", `{"extra":`+strings.Repeat("[", 200)+strings.Repeat("]", 200)+",", 1))
	case "bad_time":
		return []byte(replaceField(s, "tx_datetime", `"tx_datetime":"yesterday at noon"`))
	case "null_required":
		return []byte(replaceField(s, "customer_id", `"customer_id":null`))
	}
	return bytes.Clone(event)
}

// replaceField replaces the member "name":value of a flat event with repl (or removes it).
func replaceField(s, name, repl string) string {
	i := strings.Index(s, `"`+name+`":`)
	if i < 0 {
		return s
	}
	j := i + len(name) + 3
	if j < len(s) && s[j] == '"' {
		j = j + 1 + strings.IndexByte(s[j+1:], '"') + 1
	} else {
		for j < len(s) && s[j] != ',' && s[j] != '}' {
			j++
		}
	}
	if repl == "" {
		// drop the member and one adjacent comma
		if j < len(s) && s[j] == ',' {
			return s[:i] + s[j+1:]
		}
		if i > 0 && s[i-1] == ',' {
			return s[:i-1] + s[j:]
		}
	}
	return s[:i] + repl + s[j:]
}
