package analysis

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"text/tabwriter"
)

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
