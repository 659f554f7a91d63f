//go:build !integration

package topics

import "github.com/streamscore/streamscore/pipeline"

// topics speaks the operator's record types (package record) without importing the
// operator; these assertions keep its types fitting the operator's interfaces.
var (
	_ pipeline.GroupSource    = (*GroupSource)(nil)
	_ pipeline.Source         = (*Replay)(nil)
	_ pipeline.Sink           = (*Producer)(nil)
	_ pipeline.Source         = (*TransactSession)(nil)
	_ pipeline.Sink           = (*TransactSession)(nil)
	_ pipeline.Transactional  = (*TransactSession)(nil)
	_ pipeline.FeedbackSource = (*Feedback)(nil)
	_ pipeline.History        = (*History)(nil)
)
