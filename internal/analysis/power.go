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

// easiestBase is the baseline rate at which the default must_catch is
// easiest to catch: below it must_catch is 3× the rate (fewer events),
// above it the rate plus 1 point (a smaller ratio).
const easiestBase = 0.005

// Power is about the chance the 5xx comparison, over the looks observed
// so far and the projected ones (future: the rest of the schedule at the
// traffic seen), fails a canary whose rate is the policy's must_catch. The
// baseline's rate is estimated from both sides (under the hypothesis the
// test checks they share it: twice the data), and the canary is given the
// benefit of the doubt: within the estimate's 80% interval, the rate the
// default must_catch is easiest to catch at (easiestBase). A canary is
// underpowered only when no rate consistent with what was seen gives its
// test the power.
func (a *Analyzer) Power(future []Exposure) Power {
	base := MinBaseRate
	if n, k := a.canary.Requests+a.comparison.Requests, a.canary.Errors+a.comparison.Errors; n > 0 {
		lo, hi := clopperPearson(k, n, 0.2)
		base = max(base, min(max(easiestBase, lo), hi))
	}
	target := a.Policy.MustCatch
	if target <= 0 {
		target = MustCatchFor(base)
	}
	canary, comparison := float64(a.canary.Requests), float64(a.comparison.Requests)
	for _, e := range future {
		canary += e.Canary
		comparison += e.Comparison
	}
	alpha := a.Policy.Alpha
	if a.family != nil {
		alpha = a.family.errorRate
	}
	out := Power{MustCatch: target, BaseRate: base, Power: FinalPower(alpha, base, target, canary, comparison)}
	if out.Underpowered() && target > base {
		lo, hi := 1.0, 2.0
		for FinalPower(alpha, base, target, canary*hi, comparison*hi) < RequiredPower && hi < 1e6 {
			lo, hi = hi, hi*2
		}
		for hi/lo > 1.01 {
			mid := (lo + hi) / 2
			if FinalPower(alpha, base, target, canary*mid, comparison*mid) < RequiredPower {
				lo = mid
			} else {
				hi = mid
			}
		}
		out.Needed = int(math.Ceil((hi - 1) * canary))
	}
	return out
}

// FinalPower is the chance that the exact conditional comparison, judged
// once on all the requests (canary and comparison) at budget alpha, fails
// a canary at canaryRate against a comparison at baseRate: averaged over
// the Poisson number of 5xx both sides have together. The sequential test
// spends a little of its budget on earlier looks, so its power is about a
// point lower when the canary is near must_catch.
func FinalPower(alpha, baseRate, canaryRate, canary, comparison float64) float64 {
	if canary <= 0 || comparison <= 0 || canaryRate <= baseRate {
		return 0
	}
	q := canary / (canary + comparison)
	lambda := canary*canaryRate + comparison*baseRate
	share := canary * canaryRate / lambda
	power := 0.0
	// b is the smallest count with P(X >= b | k, q) <= alpha; it never
	// falls as k grows, so it is found by stepping up from the last one.
	b := 1
	for k, w := range poissonPMF(lambda) {
		if k == 0 || w < 1e-12 {
			continue
		}
		b = max(b, 1)
		for b <= k && regIncBeta(float64(b), float64(k-b+1), q) > alpha {
			b++
		}
		if b <= k {
			power += w * regIncBeta(float64(b), float64(k-b+1), share)
		}
	}
	return power
}

// poissonPMF is the Poisson distribution of mean lambda, cut where it is negligible.
func poissonPMF(lambda float64) []float64 {
	n := int(lambda + 10*math.Sqrt(lambda) + 10)
	out := make([]float64, n+1)
	mode := int(lambda)
	lg, _ := math.Lgamma(float64(mode + 1))
	out[mode] = math.Exp(float64(mode)*math.Log(lambda) - lambda - lg)
	for k := mode + 1; k <= n; k++ {
		out[k] = out[k-1] * lambda / float64(k)
	}
	for k := mode - 1; k >= 0; k-- {
		out[k] = out[k+1] * float64(k+1) / lambda
	}
	return out
}

// Totals are the requests the analysis has counted on the canary, the
// comparison and stable, across resumes.
func (a *Analyzer) Totals() (canary, comparison, stable int) {
	return a.canary.Requests, a.comparison.Requests, a.stable.Requests
}
