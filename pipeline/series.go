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
}

// dropFront removes the first n rows.
func (s *series) dropFront(n, stride int) {
	if n <= 0 {
		return
	}
	s.t = s.t[n:]
	s.v = s.v[n*stride:]
	if s.p != nil {
		s.p, s.o = s.p[n:], s.o[n:]
	}
	// Give the memory back once the dead prefix dominates.
	if cap(s.t) > 64 && len(s.t) < cap(s.t)/4 {
		s.t = append([]int64(nil), s.t...)
		s.v = append([]float64(nil), s.v...)
		if s.p != nil {
			s.p, s.o = append([]int32(nil), s.p...), append([]int64(nil), s.o...)
		}
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
		n := 0
		for n < len(s.t) && s.t[n] <= cut {
			n++
		}
		s.dropFront(n, stride)
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
