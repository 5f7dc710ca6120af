package rollout

import (
	"time"

	"github.com/releasekit/terraform-provider-release/internal/analysis"
	"github.com/releasekit/terraform-provider-release/internal/canary"
)

// judgment turns a policy into what the analysis needs.
func judgment(p canary.Policy) analysis.Policy {
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
