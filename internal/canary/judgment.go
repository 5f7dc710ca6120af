package canary

import (
	"time"

	"github.com/releasekit/terraform-provider-release/internal/analysis"
)

// Judgment is what the analysis needs of the policy to judge a canary: the
// thresholds, the metric ranges, and how many looks its false-alarm budget
// is spent over.
func (p Policy) Judgment() analysis.Policy {
	a := p.Analysis
	out := analysis.Policy{
		MinRequests:  a.MinRequests,
		MaxErrorRate: a.MaxErrorRate,
		MaxLatency:   time.Duration(a.MaxLatency).Seconds(),
		Looks:        p.Looks(),
	}
	if a.Errors != nil {
		out.NewErrorIntervals = a.Errors.NewTypeIntervals
		out.DetectDecrease = a.Errors.DetectDecrease
	}
	for _, q := range a.Queries {
		out.Ranges = append(out.Ranges, analysis.Range{Name: q.Name, Min: q.Min, Max: q.Max})
	}
	return out
}
