package analysis

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"text/tabwriter"
)

// The simulation measures the judgment: it runs many canaries with known
// error rates through an Analyzer, look by look, and counts the failures.
// Only tests and the benchmark need it, so it lives here.

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
			if a.Judge(s, float64(k)/float64(sc.Looks)).Verdict == Fail {
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

// The simulation is the judgment's own acceptance: A/A canaries rarely fail,
// bad ones are caught. Small run counts keep this a unit test; the benchmark
// prints the full table.
func TestSimulationTargets(t *testing.T) {
	pol := Policy{MinRequests: 50}
	aa := Simulate(Scenario{Looks: 10, PerSide: 2000, CanaryRate: 0.02, BaselineRate: 0.02, Policy: pol}, 1500, 42)
	ab := Simulate(Scenario{Looks: 10, PerSide: 2000, CanaryRate: 0.02, BaselineRate: 0.005, Policy: pol}, 800, 43)
	if aa.FailRate() > 0.02 {
		t.Errorf("A/A canaries failed %.2f%% of the time", 100*aa.FailRate())
	}
	if ab.FailRate() < 0.93 {
		t.Errorf("2%% vs 0.5%% with 2,000 a side caught in %.1f%% of runs", 100*ab.FailRate())
	}
}

// BenchmarkJudgment simulates many canaries and prints, as a table, how often
// the default judgment fails A/A canaries (false positives) and catches bad
// ones (detection), at several traffic levels and numbers of looks.
//
//	go test ./internal/analysis/ -run '^$' -bench Judgment -benchtime 1x
func BenchmarkJudgment(b *testing.B) {
	const runs = 6000
	pol := Policy{MinRequests: 50}
	var sb strings.Builder
	tw := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "requests/side\tlooks\tA/A 0.5%\tA/A 2%\tA/A 10%\t2% vs 0.5%\t1% vs 0.5%\t5% vs 0% (mean look)\t")
	for i := 0; i < b.N; i++ {
		for _, looks := range []int{10, 20, 30} {
			for _, n := range []int{500, 1000, 2000, 5000} {
				sim := func(c, base float64, seed uint64) Outcome {
					return Simulate(Scenario{Looks: looks, PerSide: n, CanaryRate: c, BaselineRate: base, Policy: pol}, runs, seed)
				}
				gross := sim(0.05, 0, 6)
				fmt.Fprintf(tw, "%d\t%d\t%.2f%%\t%.2f%%\t%.2f%%\t%.1f%%\t%.1f%%\t%.1f%% (%.1f)\t\n", n, looks,
					100*sim(0.005, 0.005, 1).FailRate(), 100*sim(0.02, 0.02, 2).FailRate(), 100*sim(0.1, 0.1, 3).FailRate(),
					100*sim(0.02, 0.005, 4).FailRate(), 100*sim(0.01, 0.005, 5).FailRate(), 100*gross.FailRate(), gross.MeanFailLook)
			}
		}
	}
	tw.Flush()
	fmt.Fprintf(os.Stdout, "\nJudgment of %d simulated canaries per cell (alpha budget %.3f, rho %.1f, min %d requests):\n%s\n",
		runs, DefaultAlpha, DefaultRho, pol.MinRequests, sb.String())
}
