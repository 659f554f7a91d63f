package pipeline

import (
	"math"
	"strconv"
	"time"
)

// The fast path of Decode: one strict pass over the value that validates the JSON
// (RFC 8259) and fills the event's fields as it goes, instead of the reference path's
// three (json.Valid, the tokenizer's flag scan, the tokenizer). It only ever accepts:
// anything it is not sure of (a syntax error, a member of the wrong type or out of range, a
// duplicate, a key or string with escapes, deep nesting, a missing field) makes it give up,
// and Decode runs the reference path, whose verdict and error class stand. So a value is
// accepted with the same fields by both paths or rejected by the reference path; FuzzDecode
// checks exactly that against every input it tries.

// scanKind is the kind of a scanned JSON value.
type scanKind uint8

const (
	kindInvalid scanKind = iota
	kindString
	kindNumber
	kindLiteral // true, false
	kindNull
	kindContainer
)

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// scanString scans the string starting at b[i] == '"'. It returns the index after the
// closing quote and whether the string holds escapes; end < 0 when the string is invalid.
// UTF-8 validity is Decode's check of the whole value, done before.
func scanString(b []byte, i int) (end int, escaped bool) {
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1, escaped
		case c < 0x20:
			return -1, false
		case c == '\\':
			escaped = true
			i++
			if i >= len(b) {
				return -1, false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(b) {
					return -1, false
				}
				for _, h := range b[i+1 : i+5] {
					if (h < '0' || h > '9') && (h < 'a' || h > 'f') && (h < 'A' || h > 'F') {
						return -1, false
					}
				}
				i += 4
			default:
				return -1, false
			}
		}
	}
	return -1, false
}

func digits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}

// scanNumber scans -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? at b[i]; end < 0 when
// invalid.
func scanNumber(b []byte, i int) int {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		i = digits(b, i+1)
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		j := digits(b, i+1)
		if j == i+1 {
			return -1
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(b, i)
		if j == i {
			return -1
		}
		i = j
	}
	return i
}

func scanLiteral(b []byte, i int, lit string) int {
	if len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit {
		return i + len(lit)
	}
	return -1
}

// scanValue scans one value at b[i] (no leading space) whose nesting depth is depth. It
// returns the index after it and its kind; end < 0 when invalid or nested deeper than
// maxDepth.
func scanValue(b []byte, i, depth, maxDepth int) (end int, kind scanKind) {
	if i >= len(b) {
		return -1, kindInvalid
	}
	switch c := b[i]; {
	case c == '"':
		end, _ = scanString(b, i)
		return end, kindString
	case c == '-' || '0' <= c && c <= '9':
		return scanNumber(b, i), kindNumber
	case c == 't':
		return scanLiteral(b, i, "true"), kindLiteral
	case c == 'f':
		return scanLiteral(b, i, "false"), kindLiteral
	case c == 'n':
		return scanLiteral(b, i, "null"), kindNull
	case c == '[' || c == '{':
		if depth+1 > maxDepth {
			return -1, kindInvalid
		}
		if end = scanContainer(b, i, depth+1, maxDepth); end < 0 {
			return -1, kindInvalid
		}
		return end, kindContainer
	}
	return -1, kindInvalid
}

// scanContainer scans the array or object at b[i] whose members are at depth; end < 0
// when invalid or nested deeper than maxDepth.
func scanContainer(b []byte, i, depth, maxDepth int) (end int) {
	object := b[i] == '{'
	closer := byte(']')
	if object {
		closer = '}'
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == closer {
		return i + 1
	}
	for {
		if object {
			if _, i, _ = scanKey(b, i); i < 0 {
				return -1
			}
		}
		if i, _ = scanValue(b, i, depth, maxDepth); i < 0 {
			return -1
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return -1
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case closer:
			return i + 1
		default:
			return -1
		}
	}
}

// scanKey scans an object member's key and colon at b[i]. It returns the index after the
// key's closing quote, where the value starts (after any space), and whether the key holds
// escapes; value < 0 when invalid.
func scanKey(b []byte, i int) (keyEnd, value int, escaped bool) {
	if i >= len(b) || b[i] != '"' {
		return -1, -1, false
	}
	if keyEnd, escaped = scanString(b, i); keyEnd < 0 {
		return -1, -1, false
	}
	i = skipSpace(b, keyEnd)
	if i >= len(b) || b[i] != ':' {
		return -1, -1, false
	}
	return keyEnd, skipSpace(b, i+1), escaped
}

// decodeFast is Decode's fast path: it reports whether it decoded value into ev; when it
// did not, ev is in an unspecified state and the reference path decides.
func (d *Decoder) decodeFast(value []byte, ev *Event) bool {
	ev.Present = 0
	i := skipSpace(value, 0)
	if i >= len(value) || value[i] != '{' {
		return false
	}
	i = d.scanMembers(value, skipSpace(value, i+1), ev)
	return i >= 0 && skipSpace(value, i) == len(value) && d.hasRequired(ev)
}

// scanMembers decodes the members of the top-level object from value[i], just inside its
// opening brace, and returns the index after its closing brace; -1 when it gives up.
func (d *Decoder) scanMembers(value []byte, i int, ev *Event) int {
	s := d.s
	if i < len(value) && value[i] == '}' {
		return i + 1
	}
	for {
		keyEnd, start, escaped := scanKey(value, i)
		if start < 0 || escaped {
			return -1
		}
		key := value[i+1 : keyEnd-1]
		// The reference path counts the top-level object as depth 1 and rejects members
		// nested deeper than MaxDepth+1; staying within MaxDepth is stricter, which is all
		// it needs.
		end, kind := scanValue(value, start, 1, s.MaxDepth)
		if end < 0 {
			return -1
		}
		if f, ok := s.index[string(key)]; ok { // no allocation: map[string(b)]
			if ev.Present&(1<<uint(f)) != 0 || !d.setFast(f, value[start:end], kind, ev) {
				return -1
			}
			ev.Present |= 1 << uint(f)
		}
		i = skipSpace(value, end)
		if i >= len(value) {
			return -1
		}
		if value[i] == '}' {
			return i + 1
		}
		if value[i] != ',' {
			return -1
		}
		i = skipSpace(value, i+1)
	}
}

// hasRequired reports whether every required field was present.
func (d *Decoder) hasRequired(ev *Event) bool {
	for f := range d.s.Fields {
		if d.s.Fields[f].Required && ev.Present&(1<<uint(f)) == 0 {
			return false
		}
	}
	return true
}

// setFast sets field f from its raw value v, or reports false where the reference path's
// setField would not set it the same way without an error.
func (d *Decoder) setFast(f int, v []byte, kind scanKind, ev *Event) bool {
	fl := &d.s.Fields[f]
	if kind == kindNull {
		return !fl.Required
	}
	switch fl.Type {
	case TypeInt:
		if kind != kindNumber {
			return false
		}
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return false
		}
		ev.Int[f], ev.Num[f] = n, float64(n)
	case TypeFloat:
		if kind != kindNumber {
			return false
		}
		x, err := strconv.ParseFloat(string(v), 64)
		if err != nil || math.IsInf(x, 0) || math.IsNaN(x) {
			return false
		}
		ev.Num[f] = x
	case TypeString:
		if kind != kindString || hasEscape(v) {
			return false
		}
		if s := v[1 : len(v)-1]; ev.Str[f] != string(s) { // reuse the string when it is unchanged
			ev.Str[f] = string(s)
		}
		return true
	case TypeTime:
		if kind != kindString || hasEscape(v) {
			return false
		}
		ts, err := time.Parse(time.RFC3339Nano, string(v[1:len(v)-1]))
		if err != nil {
			return false
		}
		ev.Int[f], ev.Num[f] = ts.UnixNano(), float64(ts.Unix())
	default:
		return false
	}
	return inRange(fl, ev.Num[f])
}

// inRange applies the field's bounds as setField does.
func inRange(fl *Field, x float64) bool {
	return (fl.Min == nil || x >= *fl.Min) && (fl.Max == nil || x <= *fl.Max)
}

func hasEscape(v []byte) bool {
	for _, c := range v {
		if c == '\\' {
			return true
		}
	}
	return false
}
