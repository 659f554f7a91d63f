package pipeline

import "math"

// series is one entity's rows: times (unix ns) and the group's stored values, with
// stride len(group.fields). Event series are in log order; feedback series are kept in
// (time, partition, offset) order, so that sums never depend on arrival interleaving.
type series struct {
	t    []int64
	v    []float64
	p    []int32 // feedback only
	o    []int64 // feedback only
	maxT int64
	// desc is the index of the last row older than the row before it, 0 when there is
	// none: the rows are then in time order and a window's rows are one contiguous run,
	// found by binary search. Event series are in log order, which is time order except
	// for late events; feedback series are always in time order.
	desc int
}

// appendRow appends an event's row: its time and the stored fields.
func (s *series) appendRow(t int64, ev *Event, fields []int) {
	if len(s.t) > 0 && t < s.t[len(s.t)-1] {
		s.desc = len(s.t)
	}
	if cap(s.t) == 0 {
		// Most entities hold a few rows: skip the smallest steps of append's growth.
		s.t = make([]int64, 0, 4)
		s.v = make([]float64, 0, 4*len(fields))
	}
	s.t = append(s.t, t)
	for _, f := range fields {
		s.v = append(s.v, ev.Num[f])
	}
}

// sorted reports whether the rows are in time order.
// position is where a feedback or table row (time t, from partition part at offset off)
// goes in the series' (time, partition, offset) order, so that sums and lookups never
// depend on the order in which partitions were read.
func (s *series) position(t int64, part int32, off int64) int {
	i := len(s.t)
	for i > 0 && (s.t[i-1] > t || (s.t[i-1] == t && (s.p[i-1] > part || (s.p[i-1] == part && s.o[i-1] > off)))) {
		i--
	}
	return i
}

// openAt inserts a row at i with zeroed values (stride of them), for the caller to fill.
func (s *series) openAt(i int, t int64, part int32, off int64, stride int) {
	s.t = append(s.t, 0)
	copy(s.t[i+1:], s.t[i:])
	s.t[i] = t
	s.p = append(s.p, 0)
	copy(s.p[i+1:], s.p[i:])
	s.p[i] = part
	s.o = append(s.o, 0)
	copy(s.o[i+1:], s.o[i:])
	s.o[i] = off
	s.v = append(s.v, make([]float64, stride)...)
	copy(s.v[(i+1)*stride:], s.v[i*stride:])
	clear(s.v[i*stride : (i+1)*stride])
	s.maxT = max(s.maxT, t)
}

func (s *series) sorted() bool { return s.desc == 0 }

// after returns the index of the first row later than x; the rows must be sorted.
// Windows end at or near an entity's newest rows, so it walks back from the end first:
// that reads memory in order, where a binary search of a series that is not in cache
// waits for each probe's miss in turn. Past 64 rows it falls back to binary search.
func (s *series) after(x int64) int {
	hi := len(s.t)
	for stop := max(hi-64, 0); hi > stop && s.t[hi-1] > x; hi-- {
	}
	if hi == 0 || s.t[hi-1] <= x {
		return hi
	}
	lo := 0
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if s.t[m] <= x {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// expired counts the leading rows at or before cut.
func (s *series) expired(cut int64) int {
	if s.sorted() {
		return s.after(cut)
	}
	n := 0
	for n < len(s.t) && s.t[n] <= cut {
		n++
	}
	return n
}

// dropFront removes the first n rows, and gives the memory back once the rows left use
// little of it.
func (s *series) dropFront(n, stride int) {
	s.compact(n, stride)
	if cap(s.t) > 64 && len(s.t) < cap(s.t)/4 {
		s.t = append([]int64(nil), s.t...)
		s.v = append([]float64(nil), s.v...)
		if s.p != nil {
			s.p, s.o = append([]int32(nil), s.p...), append([]int64(nil), s.o...)
		}
	}
}

// compact removes the first n rows by moving the others to the front of the same
// arrays: the room freed serves the next rows, where re-slicing would leave it behind
// and make the next append copy everything anyway.
func (s *series) compact(n, stride int) {
	if n <= 0 {
		return
	}
	s.desc = max(s.desc-n, 0) // a descent at or before row n involved a row dropped
	s.t = s.t[:copy(s.t, s.t[n:])]
	s.v = s.v[:copy(s.v, s.v[n*stride:])]
	if s.p != nil {
		s.p = s.p[:copy(s.p, s.p[n:])]
		s.o = s.o[:copy(s.o, s.o[n:])]
	}
}

// entityMap holds the series of one group, by int or by string key.
type entityMap struct {
	ints map[int64]*series
	strs map[string]*series
}

func newEntityMap() entityMap {
	return entityMap{ints: map[int64]*series{}, strs: map[string]*series{}}
}

func (m *entityMap) get(ev *Event, field int, typ FieldType, create bool) *series {
	if typ == TypeString {
		s := m.strs[ev.Str[field]]
		if s == nil && create {
			s = &series{maxT: math.MinInt64}
			m.strs[ev.Str[field]] = s
		}
		return s
	}
	s := m.ints[ev.Int[field]]
	if s == nil && create {
		s = &series{maxT: math.MinInt64}
		m.ints[ev.Int[field]] = s
	}
	return s
}

func (m *entityMap) size() int { return len(m.ints) + len(m.strs) }

// sweep drops rows at or below cut and forgets entities left empty.
func (m *entityMap) sweep(cut int64, stride int) {
	trim := func(s *series) bool {
		if s.maxT <= cut {
			return true
		}
		s.dropFront(s.expired(cut), stride)
		return false
	}
	for k, s := range m.ints {
		if trim(s) {
			delete(m.ints, k)
		}
	}
	for k, s := range m.strs {
		if trim(s) {
			delete(m.strs, k)
		}
	}
}
