package analysis

import (
	"fmt"
	"math"
)

// Exposure is one look's requests on each side, observed or projected.
type Exposure struct {
	T                  float64
	Canary, Comparison float64
}

// Power is what a step's test could have caught.
type Power struct {
	// MustCatch is the canary 5xx rate the test had to be able to catch,
	// BaseRate the comparison's rate it was judged against.
	MustCatch, BaseRate float64
	// Power is the chance the 5xx comparison fails a canary at MustCatch.
	Power float64
	// Needed is about how many more canary requests, over the same
	// schedule, would have given it RequiredPower; 0 when it had it.
	Needed int
}

// Underpowered says the test could not have caught MustCatch reliably.
func (p Power) Underpowered() bool { return p.Power < RequiredPower }

func (p Power) String() string {
	s := fmt.Sprintf("%.0f%% power to catch a %.2f%% 5xx rate against %.2f%%", 100*p.Power, 100*p.MustCatch, 100*p.BaseRate)
	if p.Underpowered() {
		s += fmt.Sprintf("; about %d more canary requests needed", p.Needed)
	}
	return s
}

// Power is the chance the 5xx comparison, run over the looks observed so
// far and the projected ones (future, at the exposure fractions the rest of
// the schedule reaches), fails a canary whose rate is the policy's
// must_catch, judged against the comparison's rate seen so far.
func (a *Analyzer) Power(future []Exposure) Power {
	base := MinBaseRate
	if a.comparison.Requests > 0 {
		base = max(base, float64(a.comparison.Errors)/float64(a.comparison.Requests))
	}
	target := a.Policy.MustCatch
	if target <= 0 {
		target = MustCatchFor(base)
	}
	plan := make([]Exposure, 0, len(a.intervals)+len(future))
	for _, iv := range a.intervals {
		plan = append(plan, Exposure{T: iv.T, Canary: float64(iv.Canary.Requests), Comparison: float64(iv.Baseline.Requests)})
	}
	plan = append(plan, future...)
	alpha := a.Policy.Alpha * weightErrorRate / (weightErrorRate + 1e-9)
	if a.family != nil {
		alpha = a.family.errorRate
	}
	out := Power{MustCatch: target, BaseRate: base, Power: PlannedPower(alpha, a.Policy.Rho, base, target, plan, 1)}
	if out.Underpowered() {
		canary := 0.0
		for _, e := range plan {
			canary += e.Canary
		}
		lo, hi := 1.0, 2.0
		for PlannedPower(alpha, a.Policy.Rho, base, target, plan, hi) < RequiredPower && hi < 1e4 {
			lo, hi = hi, hi*2
		}
		for range 20 {
			mid := (lo + hi) / 2
			if PlannedPower(alpha, a.Policy.Rho, base, target, plan, mid) < RequiredPower {
				lo = mid
			} else {
				hi = mid
			}
		}
		out.Needed = int(math.Ceil((hi - 1) * canary))
	}
	return out
}

// PlannedPower is the chance the exact sequential comparison at budget
// alpha crosses its boundary by the last look of plan (its exposures
// multiplied by scale) when the canary's 5xx rate is canaryRate and the
// comparison's baseRate. Each look's total of 5xx is taken at its expected
// value (cumulated, then rounded, so small looks are not lost); the
// canary's share of them is binomial.
func PlannedPower(alpha, rho, baseRate, canaryRate float64, plan []Exposure, scale float64) float64 {
	null := NewSequential(alpha, rho)
	alt := []float64{1}
	crossed, cum := 0.0, 0.0
	done := 0
	for _, e := range plan {
		nc, nb := e.Canary*scale, e.Comparison*scale
		ec, eb := nc*canaryRate, nb*baseRate
		cum += ec + eb
		k := int(math.Round(cum)) - done
		done += k
		share := 0.0
		if ec+eb > 0 {
			share = ec / (ec + eb)
		}
		null.Look(HypergeometricPMF(k, int(math.Round(nc)), int(math.Round(nc+nb))), 0, e.T)
		if k > 0 {
			alt = convolve(alt, BinomialPMF(k, share))
		}
		if b := null.Boundary; b > 0 && b < len(alt) {
			for _, v := range alt[b:] {
				crossed += v
			}
			alt = alt[:b]
		}
	}
	return crossed
}

// Totals are the requests the analysis has counted on the canary, the
// comparison and stable, across resumes.
func (a *Analyzer) Totals() (canary, comparison, stable int) {
	return a.canary.Requests, a.comparison.Requests, a.stable.Requests
}
