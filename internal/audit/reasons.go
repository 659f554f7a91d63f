package audit

import (
	"fmt"
	"strconv"

	"github.com/streamscore/streamscore/pipeline"
)

// reasonsText is the explanation a prediction carries, in a form equal for two
// predictions exactly when every number of it has the same bits: the base value, each
// reason's feature, value and contribution, and the other features' contribution. ""
// when it carries none.
func reasonsText(p *pipeline.Prediction) string {
	if p.BaseValue == nil && p.Reasons == nil {
		return ""
	}
	b := []byte("base ")
	if p.BaseValue != nil {
		b = strconv.AppendFloat(b, *p.BaseValue, 'g', -1, 64)
	}
	for _, r := range p.Reasons {
		b = append(b, "; "...)
		b = append(b, r.Feature...)
		b = append(b, '=')
		b = strconv.AppendFloat(b, float64(r.Value), 'g', -1, 32)
		b = append(b, ' ')
		b = strconv.AppendFloat(b, r.Contribution, 'g', -1, 64)
	}
	b = append(b, "; other "...)
	b = strconv.AppendFloat(b, p.OtherContribution, 'g', -1, 64)
	return string(b)
}

// compareReasons counts a reason mismatch of the joined event k.
func (r *Report) compareReasons(k Key, a, b string, show int) {
	if a == b {
		return
	}
	r.ReasonMismatches++
	if len(r.FirstMismatch) < show {
		r.FirstMismatch = append(r.FirstMismatch, fmt.Sprintf("%s: reasons %q vs %q", k, a, b))
	}
}
