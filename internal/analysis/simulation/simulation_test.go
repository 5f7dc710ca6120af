//go:build sim

package simulation

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"
)

// reportOnly: RELEASE_SIM_REPORT_ONLY=1 reports missed targets without failing.
func reportOnly() bool { return os.Getenv("RELEASE_SIM_REPORT_ONLY") == "1" }

// scale: RELEASE_SIM_SCALE runs that fraction of every cell's runs.
func scale(t *testing.T) float64 {
	v := os.Getenv("RELEASE_SIM_SCALE")
	if v == "" {
		return 1
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f <= 0 {
		t.Fatalf("RELEASE_SIM_SCALE=%q is not a positive number", v)
	}
	return f
}

var printMu sync.Mutex

// run releases a cell's canaries one after another, each with its own seed.
func run(ctx context.Context, c *Cell, runs int) *Result {
	r := &Result{Cell: c, Outcomes: make([]Outcome, runs)}
	if c.Paired != nil {
		r.Paired = make([]Outcome, runs)
	}
	start := time.Now()
	for i := 0; i < runs; i++ {
		s := c.Seed<<32 | uint64(i)
		r.Outcomes[i] = release(ctx, c.Policy, c.Scenario, s)
		if c.Paired != nil {
			r.Paired[i] = release(ctx, c.Policy, *c.Paired, s)
		}
	}
	r.Wall = time.Since(start)
	return r
}

// breakdown is how the runs ended, in shares.
func breakdown(os []Outcome) string {
	var n [kinds]int
	looks := 0
	for _, o := range os {
		n[o.Kind]++
		looks += o.Looks
	}
	var parts []string
	for k := Kind(0); k < kinds; k++ {
		parts = append(parts, fmt.Sprintf("%s %.2f%%", k, 100*float64(n[k])/float64(len(os))))
	}
	return strings.Join(parts, ", ") + fmt.Sprintf("; %.1f looks on average", float64(looks)/float64(len(os)))
}

func table(r *Result, figs []Figure) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n=== %s: %d runs, seed %d, %s wall\n    %s\n", r.Cell.Name, len(r.Outcomes), r.Cell.Seed, r.Wall.Round(time.Millisecond), r.Cell.Setup)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, f := range figs {
		fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\n", f.Name, f, f.Target, f.verdict())
	}
	tw.Flush()
	fmt.Fprintf(&b, "    ended: %s\n", breakdown(r.Outcomes))
	if r.Paired != nil {
		fmt.Fprintf(&b, "    paired: %s\n", breakdown(r.Paired))
	}
	return b.String()
}

// TestSimulation runs every cell of issue 12's must-show table through the
// real rollout loop and prints each figure beside its target.
func TestSimulation(t *testing.T) {
	// Tens of thousands of short-lived canaries: garbage collection less often.
	debug.SetGCPercent(400)
	f := scale(t)
	cells := Cells()
	fmt.Printf("Canary judgment simulation: %d cells through rollout.Deployer (rollouttest fakes), runs ×%g.\n", len(cells), f)
	fmt.Printf("Assumptions: 5xx of stable and baseline %.1f%%; looks every %s; stable served all traffic for %s before the canary (Sample.StableBefore = rate × %s); error types read from Prometheus scraped every %s at a random phase; requests Poisson, split over the servers by the route's weights.\n",
		100*baseRate, interval, stableBefore, stableBefore, scrape)
	if f != 1 {
		fmt.Printf("RELEASE_SIM_SCALE=%g: fewer runs than the suite requires; the figures are a quick look only.\n", f)
	}
	results := make([]*Result, len(cells))
	figures := make([][]Figure, len(cells))
	start := time.Now()
	t.Run("cells", func(t *testing.T) {
		for i, c := range cells {
			t.Run(c.Name, func(t *testing.T) {
				t.Parallel()
				runs := max(1, int(float64(c.Runs)*f))
				r := run(context.Background(), c, runs)
				results[i], figures[i] = r, c.Figures(r)
				printMu.Lock()
				fmt.Print(table(r, figures[i]))
				printMu.Unlock()
				for _, o := range append(append([]Outcome(nil), r.Outcomes...), r.Paired...) {
					if o.Kind == Broken {
						t.Fatalf("a release went wrong outside the judgment: %v", o.Err)
					}
				}
				for _, fig := range figures[i] {
					if !fig.Pass {
						if fig.Ungated != "" && fig.Gate {
							t.Logf("MISS, not gated (%s): %s %s, target %s", fig.Ungated, fig.Name, fig, fig.Target)
							continue
						}
						if reportOnly() {
							t.Logf("MISS (report only): %s %s, target %s", fig.Name, fig, fig.Target)
						} else {
							t.Errorf("MISS: %s %s, target %s (RELEASE_SIM_REPORT_ONLY=1 only reports)", fig.Name, fig, fig.Target)
						}
					}
				}
			})
		}
	})
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "cell\tfigure\tvalue ± se\ttarget\t\truns\twall\n")
	var cpu time.Duration
	for i, r := range results {
		if r == nil {
			continue
		}
		cpu += r.Wall
		for j, fig := range figures[i] {
			name, runs, wall := "", "", ""
			if j == 0 {
				name, runs, wall = r.Cell.Name, strconv.Itoa(len(r.Outcomes)), r.Wall.Round(100*time.Millisecond).String()
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", name, fig.Name, fig, fig.Target, fig.verdict(), runs, wall)
		}
	}
	tw.Flush()
	fmt.Printf("\nSummary (cells ran side by side on %d goroutines; total wall %s, cell walls add to %s):\n%s",
		parallelism(), time.Since(start).Round(100*time.Millisecond), cpu.Round(100*time.Millisecond), b.String())
}

func parallelism() int {
	n, _ := strconv.Atoi(os.Getenv("GOMAXPROCS"))
	if n > 0 {
		return n
	}
	return runtimeProcs()
}
