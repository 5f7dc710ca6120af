package analysis

import (
	"math/rand/v2"
)

// Scenario is a simulated canary: traffic split evenly over the looks.
type Scenario struct {
	Looks        int
	PerSide      int // requests on each side by the last look
	CanaryRate   float64
	BaselineRate float64
	Policy       Policy
}

// Outcome of many simulated canaries.
type Outcome struct {
	Runs, Failed int
	// MeanFailLook is the average look at which failed runs failed.
	MeanFailLook float64
}

// FailRate is the share of runs the judgment failed.
func (o Outcome) FailRate() float64 { return float64(o.Failed) / float64(o.Runs) }

// Simulate judges runs simulated canaries look by look, as the rollout does.
func Simulate(sc Scenario, runs int, seed uint64) Outcome {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	p := sc.Policy
	p.Looks = sc.Looks
	out := Outcome{Runs: runs}
	lookSum := 0
	for r := 0; r < runs; r++ {
		a := NewAnalyzer(p)
		var s Sample
		for k := 1; k <= sc.Looks; k++ {
			n := sc.PerSide*k/sc.Looks - s.Canary.Requests
			s.Canary.Requests += n
			s.Canary.Errors += binomial(rng, n, sc.CanaryRate)
			s.Baseline.Requests += n
			s.Baseline.Errors += binomial(rng, n, sc.BaselineRate)
			if a.Judge(s).Verdict == Fail {
				out.Failed++
				lookSum += k
				break
			}
		}
	}
	if out.Failed > 0 {
		out.MeanFailLook = float64(lookSum) / float64(out.Failed)
	}
	return out
}

func binomial(rng *rand.Rand, n int, p float64) int {
	k := 0
	for i := 0; i < n; i++ {
		if rng.Float64() < p {
			k++
		}
	}
	return k
}
