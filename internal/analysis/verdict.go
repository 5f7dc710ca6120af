package analysis

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// Verdict of one check or one analysis.
type Verdict int

const (
	Inconclusive Verdict = iota
	Pass
	Fail
)

func (v Verdict) String() string {
	switch v {
	case Pass:
		return "pass"
	case Fail:
		return "FAIL"
	}
	return "inconclusive"
}

// Policy is how a canary is judged.
type Policy struct {
	// MinRequests is the fewest requests on each side for a check to count;
	// below it a check is inconclusive, never a pass.
	MinRequests int
	// MaxErrorRate fails a canary whose 5xx share is significantly above it; 0 turns it off.
	MaxErrorRate float64
	// MaxLatency fails a canary whose mean response time is above it, in seconds; 0 turns it off.
	MaxLatency float64
	// Alpha is the false-alarm budget spent over the whole analysis.
	Alpha float64
	// Rho shapes how alpha is spent over the looks (see SpentAlpha).
	Rho float64
	// Looks is how many analyses are planned; the alpha is spent over them.
	Looks int
	// DetectDecrease also fails on a significant drop of a known error's rate.
	DetectDecrease bool
	// NewErrorIntervals is how many consecutive intervals a new error type
	// must appear in the canary, and never in baseline or stable, to fail it.
	NewErrorIntervals int
	// Ranges are metric values that must stay within bounds (Prometheus queries).
	Ranges []Range
}

// Range bounds one metric of the canary.
type Range struct {
	Name     string
	Min, Max *float64
}

// Counts are cumulative since the canary started.
type Counts struct {
	Requests int
	Errors   int // 5xx
	// MeanLatency in seconds; NaN when unknown.
	MeanLatency float64
	// Latencies counts requests by response time: Latencies[i] is how many
	// took at most LatencyBounds[i] seconds and more than the bound before;
	// the last holds those slower than every bound. Nil when unknown.
	Latencies []int
}

// LatencyBounds are the response-time buckets (seconds) a collector counts
// requests into (Counts.Latencies): the latency checks judge the share of
// requests slower than bounds picked from these.
var LatencyBounds = []float64{
	0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075,
	0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 7.5, 10, 15, 30, 60,
}

// Sample is what one analysis sees: cumulative counts, error types, metric values.
type Sample struct {
	Canary, Baseline Counts
	// Stable counts the stable servers since the canary began; with no
	// baseline it is the comparison, and Baseline holds the same counts.
	Stable Counts
	// StableBefore is how many requests stable served, as far as is known,
	// before the canary began: exposure in which no new error type appeared.
	StableBefore int
	// CountsNote says how the request counts may fall short of every
	// request served ("" when they are exact): a report shows it.
	CountsNote string
	// ErrorTypes holds cumulative counts of each known error type per track.
	ErrorTypes map[string]TypeCounts
	// Values of range metrics by name; missing means no data.
	Values map[string]float64
}

// TypeCounts are the cumulative occurrences of one error type.
type TypeCounts struct{ Canary, Baseline, Stable int }

// Check is one metric's judgment, as the report shows it.
type Check struct {
	Name     string
	Canary   string
	Baseline string
	Samples  string
	Verdict  Verdict
	Reason   string
}

// Result is one analysis.
type Result struct {
	// Step is the canary step the analysis belongs to (1-based; 0 when not set).
	Step    int
	Look    int
	Verdict Verdict
	Checks  []Check
}

// Defaults chosen by the simulation (BenchmarkJudgment): with them A/A canaries
// fail under 1% of the time (the union bound and the exact test are
// conservative, so the budget is above the rate it yields), and a 2% canary
// against a 0.5% baseline is caught in over 95% of runs with 2,000 requests
// a side when the canary is analysed up to 20 times.
const (
	DefaultAlpha = 0.025
	DefaultRho   = 2.5
)

// Analyzer judges successive samples of one canary. Not safe for concurrent use.
type Analyzer struct {
	Policy    Policy
	look      int
	streaks   map[string]int
	lastTypes map[string]TypeCounts
}

// NewAnalyzer starts the analysis of a canary.
func NewAnalyzer(p Policy) *Analyzer {
	if p.Alpha <= 0 {
		p.Alpha = DefaultAlpha
	}
	if p.Rho <= 0 {
		p.Rho = DefaultRho
	}
	if p.NewErrorIntervals <= 0 {
		p.NewErrorIntervals = 2
	}
	if p.Looks <= 0 {
		p.Looks = 1
	}
	return &Analyzer{Policy: p, streaks: map[string]int{}, lastTypes: map[string]TypeCounts{}}
}

// Judge analyses the next sample.
func (a *Analyzer) Judge(s Sample) Result {
	a.look++
	p := a.Policy
	alpha := LookAlpha(p.Alpha, p.Rho, a.look, p.Looks)
	res := Result{Look: a.look}
	enough := s.Canary.Requests >= p.MinRequests && s.Baseline.Requests >= p.MinRequests && s.Canary.Requests > 0
	samples := fmt.Sprintf("%d vs %d requests", s.Canary.Requests, s.Baseline.Requests)

	// Error rate, canary against baseline.
	c := Check{Name: "error rate", Canary: rate(s.Canary.Errors, s.Canary.Requests), Baseline: rate(s.Baseline.Errors, s.Baseline.Requests), Samples: samples}
	switch {
	case !enough:
		c.Reason = fmt.Sprintf("fewer than %d requests on a side", p.MinRequests)
	default:
		pv := IncreaseTest(s.Canary.Errors, s.Canary.Requests, s.Baseline.Errors, s.Baseline.Requests)
		c.Verdict, c.Reason = judgeP(pv, alpha, "higher than the baseline's")
	}
	res.Checks = append(res.Checks, c)

	// Error rate against the policy's ceiling.
	if p.MaxErrorRate > 0 {
		c := Check{Name: "max error rate", Canary: rate(s.Canary.Errors, s.Canary.Requests), Baseline: fmt.Sprintf("limit %.2f%%", 100*p.MaxErrorRate), Samples: fmt.Sprintf("%d requests", s.Canary.Requests)}
		if !enough {
			c.Reason = fmt.Sprintf("fewer than %d requests", p.MinRequests)
		} else {
			c.Verdict, c.Reason = judgeP(AboveRateTest(s.Canary.Errors, s.Canary.Requests, p.MaxErrorRate), alpha, "above the limit")
		}
		res.Checks = append(res.Checks, c)
	}

	// Mean latency against the ceiling.
	if p.MaxLatency > 0 {
		c := Check{Name: "max latency", Canary: seconds(s.Canary.MeanLatency), Baseline: seconds(s.Baseline.MeanLatency) + fmt.Sprintf(" (limit %s)", seconds(p.MaxLatency)), Samples: samples}
		switch {
		case !enough || math.IsNaN(s.Canary.MeanLatency):
			c.Reason = "not enough data"
		case s.Canary.MeanLatency > p.MaxLatency:
			c.Verdict, c.Reason = Fail, "mean response time above the limit"
		default:
			c.Verdict, c.Reason = Pass, "within the limit"
		}
		res.Checks = append(res.Checks, c)
	}

	res.Checks = append(res.Checks, a.errorTypes(s, enough, alpha)...)

	for _, r := range p.Ranges {
		c := Check{Name: r.Name, Baseline: bounds(r), Samples: "query"}
		v, ok := s.Values[r.Name]
		switch {
		case !ok || math.IsNaN(v):
			c.Canary, c.Reason = "no data", "the query returned nothing"
		case r.Min != nil && v < *r.Min, r.Max != nil && v > *r.Max:
			c.Canary, c.Verdict, c.Reason = fmt.Sprintf("%.4g", v), Fail, "outside the expected range"
		default:
			c.Canary, c.Verdict, c.Reason = fmt.Sprintf("%.4g", v), Pass, "within the expected range"
		}
		res.Checks = append(res.Checks, c)
	}

	res.Verdict = Pass
	for _, c := range res.Checks {
		if c.Verdict == Fail {
			res.Verdict = Fail
			break
		}
		if c.Verdict == Inconclusive {
			res.Verdict = Inconclusive
		}
	}
	return res
}

// errorTypes finds new error types and significant changes of known ones.
func (a *Analyzer) errorTypes(s Sample, enough bool, alpha float64) []Check {
	names := make([]string, 0, len(s.ErrorTypes))
	for n := range s.ErrorTypes {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []Check
	for _, name := range names {
		t := s.ErrorTypes[name]
		prev := a.lastTypes[name]
		a.lastTypes[name] = t
		if t.Baseline == 0 && t.Stable == 0 {
			// Never seen outside the canary: new if it keeps appearing.
			if t.Canary > prev.Canary {
				a.streaks[name]++
			} else {
				a.streaks[name] = 0
			}
			if t.Canary == 0 {
				continue
			}
			c := Check{Name: "new error type " + name, Canary: fmt.Sprintf("%d", t.Canary), Baseline: "0 (stable 0)",
				Samples: fmt.Sprintf("%d of %d intervals in a row", a.streaks[name], a.Policy.NewErrorIntervals)}
			if a.streaks[name] >= a.Policy.NewErrorIntervals {
				c.Verdict, c.Reason = Fail, "a new type of error"
			} else {
				c.Reason = "seen, not yet in enough consecutive intervals"
			}
			out = append(out, c)
			continue
		}
		a.streaks[name] = 0
		c := Check{Name: "error type " + name, Canary: rate(t.Canary, s.Canary.Requests), Baseline: rate(t.Baseline, s.Baseline.Requests),
			Samples: fmt.Sprintf("%d vs %d occurrences", t.Canary, t.Baseline)}
		if !enough {
			c.Reason = "not enough requests"
			out = append(out, c)
			continue
		}
		verdict, reason := judgeP(IncreaseTest(t.Canary, s.Canary.Requests, t.Baseline, s.Baseline.Requests), alpha, "more frequent than in the baseline")
		if verdict != Fail && a.Policy.DetectDecrease {
			if v2, r2 := judgeP(DecreaseTest(t.Canary, s.Canary.Requests, t.Baseline, s.Baseline.Requests), alpha, "less frequent than in the baseline"); v2 == Fail {
				verdict, reason = v2, r2
			}
		}
		c.Verdict, c.Reason = verdict, reason
		out = append(out, c)
	}
	return out
}

func judgeP(p, alpha float64, what string) (Verdict, string) {
	if alpha > 0 && p < alpha {
		return Fail, fmt.Sprintf("significantly %s (p=%.2g < %.2g)", what, p, alpha)
	}
	return Pass, fmt.Sprintf("not significantly %s (p=%.2g)", what, p)
}

func rate(errors, requests int) string {
	if requests == 0 {
		return "no requests"
	}
	return fmt.Sprintf("%.2f%% (%d/%d)", 100*float64(errors)/float64(requests), errors, requests)
}

func seconds(s float64) string {
	if math.IsNaN(s) {
		return "no data"
	}
	return fmt.Sprintf("%.0fms", s*1000)
}

func bounds(r Range) string {
	var parts []string
	if r.Min != nil {
		parts = append(parts, fmt.Sprintf("min %.4g", *r.Min))
	}
	if r.Max != nil {
		parts = append(parts, fmt.Sprintf("max %.4g", *r.Max))
	}
	return strings.Join(parts, ", ")
}

// Report renders analyses as a Markdown table, ready for a pull request comment.
func Report(title string, results []Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### %s\n\n| step | look | check | canary | baseline | samples | verdict | why |\n|---|---|---|---|---|---|---|---|\n", title)
	for _, r := range results {
		for _, c := range r.Checks {
			fmt.Fprintf(&b, "| %d | %d | %s | %s | %s | %s | %s | %s |\n", r.Step, r.Look, c.Name, cell(c.Canary), cell(c.Baseline), cell(c.Samples), c.Verdict, cell(c.Reason))
		}
	}
	return b.String()
}

// cell keeps a value inside its Markdown table cell.
func cell(s string) string {
	return strings.NewReplacer("|", "\\|", "\n", " ").Replace(s)
}
