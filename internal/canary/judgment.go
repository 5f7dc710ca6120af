package canary

import (
	"time"

	"github.com/releasekit/terraform-provider-release/internal/analysis"
)

// Judgment is what the analysis needs of the policy to judge a canary: the
// budget, the checks, the thresholds and the metric ranges.
func (p Policy) Judgment() analysis.Policy {
	a := p.Analysis
	out := analysis.Policy{
		MinRequests:  a.MinRequests,
		MaxErrorRate: a.MaxErrorRate,
		MaxLatency:   time.Duration(a.MaxLatency).Seconds(),
		Alpha:        a.FalseAlarmRate,
		HasBaseline:  p.Baseline,
		MustCatch:    a.MustCatch,
	}
	if a.Errors != nil {
		out.ErrorTypes = true
		out.DetectDecrease = a.Errors.DetectDecrease
	}
	for _, q := range a.Queries {
		out.Ranges = append(out.Ranges, analysis.Range{Name: q.Name, Min: q.Min, Max: q.Max})
	}
	return out
}

// Exposure is the planned exposure fraction reached after elapsed at step
// (0-based): the canary's weight times time, summed over the steps so far,
// over the same sum for the whole schedule. The judgment spends its budget
// by it, so looks beyond a step's pause (inconclusive retries, a hold)
// spend nothing new. A schedule of manual steps only has no planned
// exposure: every look is at 1.
func (p Policy) Exposure(step int, elapsed time.Duration) float64 {
	planned, done := 0.0, 0.0
	for i, s := range p.Steps {
		w := float64(s.Weight) * time.Duration(s.Pause).Seconds()
		planned += w
		switch {
		case i < step:
			done += w
		case i == step:
			done += float64(s.Weight) * min(elapsed, time.Duration(s.Pause)).Seconds()
		}
	}
	if planned <= 0 {
		return 1
	}
	return min(1, done/planned)
}

// UnderpoweredAction is what a step whose test could not have caught
// must_catch does.
func (p Policy) UnderpoweredAction() string {
	if p.Analysis.OnUnderpowered == "" {
		return DefaultOnUnderpowered
	}
	return p.Analysis.OnUnderpowered
}
