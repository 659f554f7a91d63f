package topics

// Joined reports whether the source is a member of its group now (it has joined and
// not left). The HTTP API's readiness uses it.
func (s *GroupSource) Joined() bool {
	_, gen := s.cl.GroupMetadata()
	return gen >= 0
}

// Joined reports whether the session is a member of its group now.
func (s *TransactSession) Joined() bool {
	_, gen := s.s.Client().GroupMetadata()
	return gen >= 0
}
