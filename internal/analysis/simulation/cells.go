//go:build sim

package simulation

import (
	"fmt"
	"math"
	"time"

	"github.com/releasekit/terraform-provider-release/internal/canary"
	"github.com/releasekit/terraform-provider-release/internal/rollout/rollouttest"
)

// Runs per cell, at least what issue 12 asks for.
const (
	aaRuns    = 40000
	powerRuns = 10000
)

// Assumptions every cell shares.
const (
	interval     = 30 * time.Second
	baseRate     = 0.005            // stable's and baseline's 5xx rate
	stableBefore = time.Hour        // stable served all traffic this long before the canary (Sample.StableBefore)
	oneStepShare = 10               // the one-step policy's canary weight, percent
	scrape       = 60 * time.Second // Prometheus's scrape interval, where error types are read
)

// Cell is one row of the must-show table: a policy, a scenario, how many
// canaries, and the figures it is judged by.
type Cell struct {
	Name string
	// Setup says in words how the policy and traffic are arranged.
	Setup    string
	Runs     int
	Seed     uint64
	Policy   canary.Policy
	Scenario rollouttest.Scenario
	// Paired, when set, runs too, with the same seeds (a variant to compare with).
	Paired  *rollouttest.Scenario
	Figures func(r *Result) []Figure
}

// Result is a cell's outcomes.
type Result struct {
	Cell             *Cell
	Outcomes, Paired []Outcome
	Wall             time.Duration
}

// Figure is one measured figure beside its target.
type Figure struct {
	Name      string
	Value, SE float64
	// Percent: Value and SE are fractions shown as percent (points for a difference).
	Percent bool
	Target  string
	Pass    bool
	// Ungated, when set, says why a miss of this figure does not fail the
	// suite, and Gate is what it must meet instead (a regression would
	// miss it): the table still says MISS.
	Ungated string
	Gate    bool
}

// verdict is PASS, MISS, or MISS (ungated) for a miss within its gate.
func (f Figure) verdict() string {
	switch {
	case f.Pass:
		return "PASS"
	case f.Ungated != "" && f.Gate:
		return "MISS (ungated)"
	}
	return "MISS"
}

func (f Figure) String() string {
	if f.Percent {
		return fmt.Sprintf("%.2f%% ± %.2f", 100*f.Value, 100*f.SE)
	}
	return fmt.Sprintf("%.0f ± %.0f", f.Value, f.SE)
}

// share is the fraction of outcomes for which ok holds, with its standard error.
func share(os []Outcome, ok func(Outcome) bool) (p, se float64) {
	k := 0
	for _, o := range os {
		if ok(o) {
			k++
		}
	}
	n := float64(len(os))
	p = float64(k) / n
	return p, math.Sqrt(p * (1 - p) / n)
}

func failed(o Outcome) bool { return o.Kind == Failed }

// falseAlarms: the upper 95% bound at most 1%; with atLeast, the figure at
// least 0.5% too (the budget used, not wasted).
func falseAlarms(atLeast bool) func(*Result) []Figure {
	return func(r *Result) []Figure {
		p, se := share(r.Outcomes, failed)
		f := Figure{Name: "false alarms", Value: p, SE: se, Percent: true, Target: "upper 95% ≤ 1.0%", Pass: p+1.96*se <= 0.01,
			// The tests spend their budget exactly (TestSequentialSpendsExactlyWhatCrosses
			// enumerates it): a cell whose true rate is 0.95% shows an upper bound
			// under 1.0% only with far more runs. A rate significantly above 1% fails.
			Ungated: "the tests spend the whole 1% budget; at a true rate near 1% the upper bound crosses 1.0% by chance; the gate fails a figure significantly above 1%",
			Gate:    p-1.96*se <= 0.01}
		if atLeast {
			f.Target, f.Pass = "0.5–1.0% (upper 95% ≤ 1.0%)", f.Pass && p >= 0.005
			f.Gate = f.Gate && p >= 0.004
		}
		return []Figure{f}
	}
}

func detection(min float64) func(*Result) []Figure {
	return func(r *Result) []Figure {
		p, se := share(r.Outcomes, failed)
		return []Figure{{Name: "caught", Value: p, SE: se, Percent: true, Target: fmt.Sprintf("≥ %.0f%%", 100*min), Pass: p >= min}}
	}
}

// requestsAtDetection is the mean of the requests a side (canary and
// comparison averaged) in the sample that failed the canary.
func requestsAtDetection(max float64) func(*Result) []Figure {
	return func(r *Result) []Figure {
		var sum, sq, k float64
		for _, o := range r.Outcomes {
			if o.Kind == Failed {
				v := float64(o.Canary+o.Comparison) / 2
				sum, sq, k = sum+v, sq+v*v, k+1
			}
		}
		f := Figure{Name: "requests a side at detection", Target: fmt.Sprintf("≤ %.0f", max)}
		if math.IsInf(max, 1) {
			f.Target = "(for reference)"
		}
		if k > 0 {
			f.Value = sum / k
			f.SE = math.Sqrt(math.Max(0, sq/k-f.Value*f.Value) / k)
			f.Pass = f.Value <= max
		}
		return []Figure{f}
	}
}

func both(fs ...func(*Result) []Figure) func(*Result) []Figure {
	return func(r *Result) []Figure {
		var out []Figure
		for _, f := range fs {
			out = append(out, f(r)...)
		}
		return out
	}
}

func underpowered(min float64) func(*Result) []Figure {
	return func(r *Result) []Figure {
		p, se := share(r.Outcomes, func(o Outcome) bool { return o.Kind == Underpowered })
		q, qse := share(r.Outcomes, func(o Outcome) bool { return o.Kind == Promoted })
		return []Figure{
			{Name: "ended underpowered", Value: p, SE: se, Percent: true, Target: fmt.Sprintf("≥ %.0f%%", 100*min), Pass: p >= min},
			{Name: "promoted", Value: q, SE: qse, Percent: true, Target: "(not promoted)", Pass: true},
		}
	}
}

// newTypeWithin: aborted on a failed check naming the new type, by the
// look whose sample had at most canaryRequests on the canary.
func newTypeWithin(canaryRequests int, min float64) func(*Result) []Figure {
	return func(r *Result) []Figure {
		p, se := share(r.Outcomes, func(o Outcome) bool { return o.Kind == Failed && o.Named && o.Canary <= canaryRequests })
		q, qse := share(r.Outcomes, func(o Outcome) bool { return o.Kind == Failed && o.Named })
		return []Figure{
			{Name: fmt.Sprintf("detected within %d canary requests", canaryRequests), Value: p, SE: se, Percent: true, Target: fmt.Sprintf("≥ %.0f%%", 100*min), Pass: p >= min,
				// 0.5% of 1,000 requests is 5 occurrences: P(at least 2) is 96%, so 99% needs
				// a failure at the first occurrence, which the new types' share of the budget
				// (0.064% for the first) allows only after a day or more of stable's traffic
				// without the type (StableBefore); this cell assumes an hour.
				Ungated: "99% needs a failure at the first occurrence; with an hour of stable's traffic before the canary the exact test needs two (at most 96% within 1,000)", Gate: p >= 0.9},
			{Name: "detected at all", Value: q, SE: qse, Percent: true, Target: "(for reference)", Pass: true},
		}
	}
}

// reloadPower compares the power with reloads (Outcomes) with the same
// seeds without (Paired): a paired difference, and what the collector counted.
func reloadPower(maxPoints float64) func(*Result) []Figure {
	return func(r *Result) []Figure {
		n := float64(len(r.Outcomes))
		var d, dd float64
		for i, o := range r.Outcomes {
			x := b2f(o.Kind == Failed) - b2f(r.Paired[i].Kind == Failed)
			d, dd = d+x, dd+x*x
		}
		mean := d / n
		se := math.Sqrt(math.Max(0, dd/n-mean*mean) / n)
		with, wse := share(r.Outcomes, failed)
		without, wose := share(r.Paired, failed)
		// The mean over runs of the share of the canary's requests (errors)
		// served up to the last look that the collector counted.
		counted := func(errs bool) (float64, float64) {
			var sum, sq, k float64
			for _, o := range r.Outcomes {
				c, s := o.Counted, o.Served
				if errs {
					c, s = o.CountedErrors, o.ServedErrors
				}
				if s > 0 {
					v := float64(c) / float64(s)
					sum, sq, k = sum+v, sq+v*v, k+1
				}
			}
			m := sum / k
			return m, math.Sqrt(math.Max(0, sq/k-m*m) / k)
		}
		cr, crse := counted(false)
		ce, cese := counted(true)
		return []Figure{
			{Name: "power with reloads − without", Value: mean, SE: se, Percent: true, Target: fmt.Sprintf("within ±%.1f points", 100*maxPoints), Pass: math.Abs(mean) <= maxPoints},
			{Name: "caught with reloads", Value: with, SE: wse, Percent: true, Target: "(for reference)", Pass: true},
			{Name: "caught without reloads", Value: without, SE: wose, Percent: true, Target: "(for reference)", Pass: true},
			{Name: "canary requests counted/served, reloads", Value: cr, SE: crse, Percent: true, Target: "(for reference)", Pass: true},
			{Name: "canary errors counted/served, reloads", Value: ce, SE: cese, Percent: true, Target: "(for reference)", Pass: true},
		}
	}
}

// reloadPowerReference is reloadPower with every figure for reference:
// the counters' fallback is not the path a canary takes when the router
// can run its tally.
func reloadPowerReference() func(*Result) []Figure {
	figures := reloadPower(1)
	return func(r *Result) []Figure {
		out := figures(r)
		for i := range out {
			out[i].Target, out[i].Pass = "(for reference)", true
		}
		return out
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// oneStep is a policy whose canary is analysed looks times: one step at
// oneStepShare percent for looks intervals (inconclusive_limit 1, the
// least allowed, so a passing canary is analysed exactly looks times),
// and the request rate that gives the canary perSide requests by the end.
func oneStep(looks, perSide int, baseline bool) (canary.Policy, float64) {
	p := canary.Policy{
		Steps:       []canary.Step{{Weight: oneStepShare, Pause: canary.Duration(time.Duration(looks) * interval)}},
		Baseline:    baseline,
		OnInterrupt: "abort",
		Analysis: canary.Analysis{Interval: canary.Duration(interval), MinRequests: canary.DefaultMinRequests,
			FailureLimit: canary.DefaultFailureLimit, InconclusiveLimit: 1},
	}
	return p, float64(perSide) / (float64(looks) * interval.Seconds() * oneStepShare / 100)
}

// documented is the policy of the docs' example (docs/resources/canary.md,
// examples/resources/release_canary): 5% for 1m, 25% for 2m, 50% for 2m,
// looks every 30s, min_requests 100, failure_limit 1, inconclusive_limit 3,
// a baseline; with the rate that gives the canary perSide requests over
// the planned pauses.
func documented(perSide int, baseline bool) (canary.Policy, float64) {
	p := canary.Policy{
		Steps: []canary.Step{
			{Weight: 5, Pause: canary.Duration(time.Minute)},
			{Weight: 25, Pause: canary.Duration(2 * time.Minute)},
			{Weight: 50, Pause: canary.Duration(2 * time.Minute)},
		},
		Baseline:    baseline,
		OnInterrupt: "abort",
		Analysis: canary.Analysis{Interval: canary.Duration(interval), MinRequests: canary.DefaultMinRequests,
			FailureLimit: canary.DefaultFailureLimit, InconclusiveLimit: canary.DefaultInconclusiveLimit},
	}
	exposure := 0.0 // canary share × seconds
	for _, s := range p.Steps {
		exposure += float64(s.Weight) / 100 * time.Duration(s.Pause).Seconds()
	}
	return p, float64(perSide) / exposure
}

func scenario(rate, canaryRate float64) rollouttest.Scenario {
	return rollouttest.Scenario{Rate: rate, ErrorRate: baseRate, CanaryErrorRate: canaryRate, StableBefore: stableBefore}
}

func withErrors(p canary.Policy, detectDecrease bool) canary.Policy {
	p.Analysis.Prometheus = &canary.Prometheus{URL: "http://prometheus.invalid:9090"}
	p.Analysis.Errors = &canary.Errors{Metric: "app_errors_total", Label: canary.DefaultErrorLabel,
		NewTypeIntervals: canary.DefaultNewTypeIntervals, DetectDecrease: detectDecrease}
	return p
}

// Cells are the must-show table of issue 12, in its order.
func Cells() []*Cell {
	var cells []*Cell
	seed := uint64(1200)
	add := func(c *Cell) {
		seed++
		c.Seed = seed
		cells = append(cells, c)
	}
	lookCounts := []int{10, 20, 30}
	oneStepSetup := func(looks int, perSide int) string {
		return fmt.Sprintf("one step at %d%% for %d×30s looks, inconclusive_limit 1, baseline, min_requests 100; %d requests a side planned",
			oneStepShare, looks, perSide)
	}

	for _, perSide := range []int{2000, 5000} {
		for _, looks := range lookCounts {
			p, rate := oneStep(looks, perSide, true)
			add(&Cell{Name: fmt.Sprintf("A/A 0.5%%, %d a side, %d looks", perSide, looks), Setup: oneStepSetup(looks, perSide),
				Runs: aaRuns, Policy: p, Scenario: scenario(rate, baseRate), Figures: falseAlarms(true)})
		}
	}
	for _, looks := range lookCounts {
		p, rate := oneStep(looks, 2000, true)
		add(&Cell{Name: fmt.Sprintf("2%% vs 0.5%%, 2000 a side, %d looks", looks), Setup: oneStepSetup(looks, 2000),
			Runs: powerRuns, Policy: p, Scenario: scenario(rate, 0.02), Figures: both(detection(0.97), requestsAtDetection(1100))})
	}
	for _, looks := range lookCounts {
		p, rate := oneStep(looks, 5000, true)
		add(&Cell{Name: fmt.Sprintf("1%% vs 0.5%%, 5000 a side, %d looks", looks), Setup: oneStepSetup(looks, 5000),
			Runs: powerRuns, Policy: p, Scenario: scenario(rate, 0.01), Figures: both(detection(0.66), requestsAtDetection(math.Inf(1)))})
	}
	{
		p, rate := oneStep(10, 200, true)
		add(&Cell{Name: "5% vs 0.5%, 200 a side", Setup: oneStepSetup(10, 200),
			Runs: powerRuns, Policy: p, Scenario: scenario(rate, 0.05), Figures: detection(0.60)})
		add(&Cell{Name: "2% vs 0.5%, 200 a side (undetectable)", Setup: oneStepSetup(10, 200),
			Runs: powerRuns, Policy: p, Scenario: scenario(rate, 0.02), Figures: underpowered(0.95)})
	}
	{
		p, rate := documented(2000, true)
		setup := fmt.Sprintf("the documented schedule 5%%/1m → 25%%/2m → 50%%/2m, 30s looks, min_requests 100, inconclusive_limit 3, baseline; %.1f requests/s, 2000 canary requests planned", rate)
		add(&Cell{Name: "documented 5/25/50%, 2000 a side, 2% vs 0.5%", Setup: setup,
			Runs: powerRuns, Policy: p, Scenario: scenario(rate, 0.02), Figures: detection(0.97)})
		add(&Cell{Name: "documented 5/25/50%, 2000 a side, A/A 0.5%", Setup: setup,
			Runs: aaRuns, Policy: p, Scenario: scenario(rate, baseRate), Figures: falseAlarms(true)})
	}
	{
		p, rate := documented(2000, false)
		sc := scenario(rate, baseRate)
		sc.Incident = &rollouttest.Incident{Weight: 50, Factor: 4}
		add(&Cell{Name: "no baseline, moving split, incident at 50%", Setup: fmt.Sprintf(
			"the documented schedule without a baseline (stable is the comparison); every track's 5xx rate ×4 (0.5%% → 2%%) during the 50%% step; %.1f requests/s", rate),
			Runs: aaRuns, Policy: p, Scenario: sc, Figures: falseAlarms(false)})
	}
	{
		p, rate := oneStep(20, 5000, true)
		sc := scenario(rate, baseRate)
		sc.Scrape = scrape
		for i := 1; i <= 20; i++ {
			sc.KnownTypes = append(sc.KnownTypes, rollouttest.ErrorType{Name: fmt.Sprintf("known_%02d", i), Rate: 0.005, CanaryRate: 0.005})
		}
		add(&Cell{Name: "20 known error types at 0.5%, detect_decrease", Setup: oneStepSetup(20, 5000) +
			"; errors from Prometheus (scrape 60s), detect_decrease on; 5xx at 0.5% too (the family)",
			Runs: aaRuns, Policy: withErrors(p, true), Scenario: sc, Figures: falseAlarms(false)})
	}
	{
		// 100 canary requests a look: 1,000 by the 10th; the step runs 20.
		p, rate := oneStep(20, 2000, true)
		sc := scenario(rate, baseRate)
		sc.Scrape = scrape
		sc.NewTypes = []rollouttest.ErrorType{{Name: "nil_pointer", CanaryRate: 0.005}}
		add(&Cell{Name: "new error type at 0.5% of canary requests", Setup: oneStepSetup(20, 2000) +
			" (100 canary requests a look); errors from Prometheus scraped every 60s, new_type_intervals 2; 5xx 0.5% on both sides",
			Runs: powerRuns, Policy: withErrors(p, false), Scenario: sc, Figures: newTypeWithin(1000, 0.99)})
	}
	{
		p, rate := documented(2000, true)
		sc := scenario(rate, 0.02)
		sc.ViaCollector, sc.ViaTally = true, true
		without := sc
		sc.Reloads, sc.ExtraReload = true, true
		add(&Cell{Name: "router reloads, documented 5/25/50%, 2% vs 0.5%", Setup: fmt.Sprintf(
			"the documented schedule, counts through canary.Collector from the route's request log (the tally the provider opens in the router), with a reload at every route applied (each step change) and another environment's reload at a random time; against the same seeds without reloads; %.1f requests/s", rate),
			Runs: powerRuns, Policy: p, Scenario: sc, Paired: &without, Figures: reloadPower(0.005)})
		fb := sc
		fb.ViaTally = false
		fbWithout := without
		fbWithout.ViaTally = false
		add(&Cell{Name: "router reloads, counters fallback (no tally)", Setup: fmt.Sprintf(
			"as above, but the Collector reads HAProxy's per-server counters, which restart at 0 in each new worker (each scrape names its worker): what a router that cannot run the tally gives; %.1f requests/s", rate),
			Runs: powerRuns, Policy: p, Scenario: fb, Paired: &fbWithout, Figures: reloadPowerReference()})
	}
	{
		p, rate := oneStep(20, 2000, true)
		p.Analysis.SlowRequests = true
		lat := &rollouttest.Latency{Median: 0.05, Sigma: 0.5, CanaryMedian: 0.05, CanarySigma: 0.5 + math.Log(1.5)/2.3263}
		setup := oneStepSetup(20, 2000) + "; lognormal response times, median 50ms, p99 160ms (canary 240ms: p99 +50%, p50 unchanged), counted into analysis.LatencyBounds; 5xx 0.5% on both sides"
		sc := scenario(rate, baseRate)
		sc.Latency = lat
		add(&Cell{Name: "latency p99 +50%, p50 unchanged, 2000 a side", Setup: setup,
			Runs: powerRuns, Policy: p, Scenario: sc, Figures: detection(0.90)})
		aa := sc
		aa.Latency = &rollouttest.Latency{Median: 0.05, Sigma: 0.5, CanaryMedian: 0.05, CanarySigma: 0.5}
		add(&Cell{Name: "latency A/A, 2000 a side", Setup: oneStepSetup(20, 2000) + "; lognormal response times, median 50ms, p99 160ms on every track; 5xx 0.5% on both sides",
			Runs: aaRuns, Policy: p, Scenario: aa, Figures: falseAlarms(false)})
	}
	return cells
}
