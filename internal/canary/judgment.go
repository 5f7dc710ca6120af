package canary

import (
	"fmt"
	"strconv"
	"strings"
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
		SlowRequests: a.SlowRequests,
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

// RequestsNeeded is about how many canary requests over the schedule give
// the 5xx comparison 80% power against must_catch when the baseline's 5xx
// rate is baseRate: what the plan tells a reviewer this policy needs.
// 0 when must_catch is not above baseRate.
func (p Policy) RequestsNeeded(baseRate float64) int {
	target := p.Analysis.MustCatch
	if target <= 0 {
		target = analysis.MustCatchFor(baseRate)
	}
	if target <= baseRate {
		return 0
	}
	alpha := p.Analysis.FalseAlarmRate
	if alpha <= 0 {
		alpha = DefaultFalseAlarmRate
	}
	// The comparison's requests per canary request: as many with a
	// baseline; without one, stable's share over the schedule.
	other := 1.0
	if !p.Baseline {
		canary, rest := 0.0, 0.0
		for _, s := range p.Steps {
			canary += float64(s.Weight) * time.Duration(s.Pause).Seconds()
			rest += float64(100-s.Weight) * time.Duration(s.Pause).Seconds()
		}
		if canary > 0 {
			other = rest / canary
		}
	}
	power := func(n float64) float64 { return analysis.FinalPower(alpha, baseRate, target, n, n*other) }
	lo, hi := 0.0, 1000.0
	for power(hi) < analysis.RequiredPower {
		if lo, hi = hi, hi*2; hi > 1e9 {
			return 0
		}
	}
	for hi-lo > max(10, hi/200) {
		if mid := (lo + hi) / 2; power(mid) < analysis.RequiredPower {
			lo = mid
		} else {
			hi = mid
		}
	}
	return int(hi)
}

// NeedsText says, for the plan, how many canary requests the policy needs.
func (p Policy) NeedsText() string {
	var parts []string
	for _, base := range []float64{0.001, 0.01} {
		target := p.Analysis.MustCatch
		if target <= 0 {
			target = analysis.MustCatchFor(base)
		}
		n := p.RequestsNeeded(base)
		if n == 0 {
			parts = append(parts, fmt.Sprintf("must_catch %.2f%% is not above a %.1f%% baseline", 100*target, 100*base))
			continue
		}
		parts = append(parts, fmt.Sprintf("about %s canary requests to catch %.2f%% against a %.1f%% baseline", thousands(n), 100*target, 100*base))
	}
	return strings.Join(parts, "; ") + " (80% power over this schedule)"
}

func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
