package record

import "errors"

// WriteError is a write to Kafka that failed: an output whose produce was not
// acknowledged, or a transaction that did not commit. topics wraps every such failure in
// one, so that a driver can decide what to do without knowing Kafka:
//
//   - Transient: Kafka recovers by itself (a leader or coordinator moves, a broker
//     restarts, the producer is fenced after a rebalance). Nothing past the failed write
//     was committed, so restarting from the last commit, after a wait, loses nothing.
//   - Permanent: waiting does not help; Fix says what an operator must change (grant an
//     ACL, create a topic, raise a size limit).
//
// Match it with errors.As, or ask IsTransient.
type WriteError struct {
	// Topic is the topic written to; empty for a transaction's end, which spans topics.
	Topic string
	// Transient says that Kafka can recover by waiting (see the type's doc).
	Transient bool
	// Fix says what to change when the error is permanent; it may be empty when the
	// cause is not known.
	Fix string
	// Err is the cause, as the Kafka client reported it.
	Err error
}

func (e *WriteError) Error() string {
	msg := "write failed"
	if e.Err != nil {
		msg = e.Err.Error()
	}
	if e.Transient {
		return msg + " (transient: Kafka may recover; restart from the last commit)"
	}
	if e.Fix != "" {
		return msg + " (permanent: " + e.Fix + ")"
	}
	return msg + " (permanent)"
}

func (e *WriteError) Unwrap() error { return e.Err }

// IsTransient reports whether err is, or wraps, a WriteError that Kafka can recover from
// by waiting. An error that is not a WriteError (a file sink's, the operator's own) is not
// transient: nothing says that waiting helps.
func IsTransient(err error) bool {
	we, ok := errors.AsType[*WriteError](err)
	return ok && we.Transient
}

// WriteClass is IsTransient as a metric label: "transient" or "permanent".
func WriteClass(err error) string {
	if IsTransient(err) {
		return "transient"
	}
	return "permanent"
}
