package analysis

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
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

// Interval is what one look added: the deltas since the look before. The
// intervals are the analysis's state: replayed, they rebuild every test, so
// a resumed canary continues the same test instead of starting a new one.
type Interval struct {
	// T is the planned exposure fraction at the look.
	T            float64                 `json:"t"`
	Canary       IntervalCounts          `json:"c"`
	Baseline     IntervalCounts          `json:"b"`
	Stable       IntervalCounts          `json:"s"`
	StableBefore int                     `json:"sb,omitempty"`
	Types        map[string]TypeInterval `json:"ty,omitempty"`
	// Resumed marks the first interval after a resume: its counts start at
	// the resumed canary's first sample, not at the last one before.
	Resumed bool `json:"r,omitempty"`
}

// IntervalCounts are one track's requests, 5xx and latency buckets in one interval.
type IntervalCounts struct {
	Requests  int   `json:"n"`
	Errors    int   `json:"e"`
	Latencies []int `json:"l,omitempty"`
}

// TypeInterval is one error type in one interval: its new occurrences per
// side and whether the type was ever seen outside the canary.
type TypeInterval struct {
	Canary   int  `json:"c"`
	Baseline int  `json:"b"`
	Outside  bool `json:"o,omitempty"`
}

// Analyzer judges successive samples of one canary. Not safe for concurrent use.
type Analyzer struct {
	Policy Policy

	look      int
	prev      Sample
	havePrev  bool
	intervals []Interval
	// state is the intervals as JSON, without the brackets.
	state  []byte
	family *family
	// intervalsCP caches Clopper-Pearson intervals by (events, total):
	// the same counts come back look after look.
	intervalsCP map[[2]int][2]float64

	// cumulative over every interval, across resumes
	canary, comparison, stable IntervalCounts
	stableBefore               int

	errorRate *Sequential
	ceiling   *Sequential
	types     map[string]*typeTest
	newTypes  map[string]*newTypeTest
	latency   []*latencyTest
	// latencyReady is set once the latency bounds are chosen.
	latencyReady bool
	// slowLooks counts looks in a row with the mean latency over MaxLatency.
	slowLooks int
	// maxShare is the largest share of all traffic the canary has had.
	maxShare float64
	lastMean [2]float64
}

type typeTest struct {
	order      int
	up, down   *Sequential
	c, b       int
	alphaShare float64
}

type newTypeTest struct {
	order int
	alpha float64
	count int
}

type latencyTest struct {
	bound int // index into LatencyBounds: slower than it is "slow"
	test  *Sequential
	c, b  int
}

// NewAnalyzer starts the analysis of a canary.
func NewAnalyzer(p Policy) *Analyzer {
	if p.Alpha <= 0 {
		p.Alpha = DefaultAlpha
	}
	if p.Rho <= 0 {
		p.Rho = DefaultRho
	}
	return &Analyzer{Policy: p, types: map[string]*typeTest{}, newTypes: map[string]*newTypeTest{}, lastMean: [2]float64{math.NaN(), math.NaN()}}
}

// State is the analysis so far, to be kept with the canary.
func (a *Analyzer) State() []byte {
	return append(append([]byte("["), a.state...), ']')
}

// Resume replays the intervals of an earlier analysis of the same canary:
// the tests continue where they were, with what they had spent. The next
// sample counts from zero (a new collector began).
func (a *Analyzer) Resume(state []byte) error {
	var ivs []Interval
	if err := json.Unmarshal(state, &ivs); err != nil {
		return fmt.Errorf("the canary's analysis state cannot be read: %w", err)
	}
	for _, iv := range ivs {
		a.judgeInterval(iv)
	}
	a.havePrev = false
	a.prev = Sample{}
	return nil
}

// Looks is how many looks the analysis has taken, resumed ones included.
func (a *Analyzer) Looks() int { return a.look }

// Judge analyses the next sample, taken at planned exposure fraction t.
func (a *Analyzer) Judge(s Sample, t float64) Result {
	iv := a.interval(s, t)
	res := a.judgeInterval(iv)
	a.judgeRanges(&res, s.Values)
	return res
}

// interval turns a cumulative sample into the deltas since the last one.
func (a *Analyzer) interval(s Sample, t float64) Interval {
	prev := a.prev
	iv := Interval{T: t, Resumed: !a.havePrev && a.look > 0}
	iv.Canary = delta(s.Canary, prev.Canary)
	iv.Baseline = delta(s.Baseline, prev.Baseline)
	iv.Stable = delta(s.Stable, prev.Stable)
	if !a.havePrev && a.look == 0 {
		iv.StableBefore = s.StableBefore
	}
	if len(s.ErrorTypes) > 0 {
		iv.Types = map[string]TypeInterval{}
		for name, now := range s.ErrorTypes {
			before := prev.ErrorTypes[name]
			iv.Types[name] = TypeInterval{
				Canary: max(0, now.Canary-before.Canary), Baseline: max(0, now.Baseline-before.Baseline),
				Outside: now.Baseline > 0 || now.Stable > 0,
			}
		}
	}
	// Keep a copy: a caller may reuse the latency slices.
	for _, c := range []*Counts{&s.Canary, &s.Baseline, &s.Stable} {
		c.Latencies = append([]int(nil), c.Latencies...)
	}
	a.prev, a.havePrev = s, true
	a.lastMean = [2]float64{s.Canary.MeanLatency, s.Baseline.MeanLatency}
	return iv
}

// delta is one track's counts since the previous sample; a counter that
// went down (counts that restarted) contributes what it holds now.
func delta(now, before Counts) IntervalCounts {
	d := IntervalCounts{Requests: now.Requests - before.Requests, Errors: now.Errors - before.Errors}
	if d.Requests < 0 || d.Errors < 0 {
		d = IntervalCounts{Requests: now.Requests, Errors: now.Errors}
	}
	d.Errors = min(max(d.Errors, 0), d.Requests)
	if len(now.Latencies) == len(LatencyBounds)+1 {
		d.Latencies = make([]int, len(now.Latencies))
		for i, v := range now.Latencies {
			if i < len(before.Latencies) && v >= before.Latencies[i] {
				v -= before.Latencies[i]
			}
			d.Latencies[i] = v
		}
	}
	return d
}

func (c *IntervalCounts) add(d IntervalCounts) {
	c.Requests += d.Requests
	c.Errors += d.Errors
	if d.Latencies != nil {
		if c.Latencies == nil {
			c.Latencies = make([]int, len(d.Latencies))
		}
		for i, v := range d.Latencies {
			c.Latencies[i] += v
		}
	}
}

// slowerThan is how many requests took longer than LatencyBounds[bound].
func (c IntervalCounts) slowerThan(bound int) int {
	n := 0
	for i := bound + 1; i < len(c.Latencies); i++ {
		n += c.Latencies[i]
	}
	return n
}

func (a *Analyzer) judgeInterval(iv Interval) Result {
	a.look++
	a.intervals = append(a.intervals, iv)
	// The state grows by one interval a look: marshal only that one.
	b, _ := json.Marshal(iv)
	if len(a.state) > 0 {
		a.state = append(a.state, ',')
	}
	a.state = append(a.state, b...)
	p := a.Policy
	if a.family == nil {
		a.family = newFamily(p, p.SlowRequests && iv.Canary.Latencies != nil && iv.Baseline.Latencies != nil)
		a.errorRate = NewSequential(a.family.errorRate, p.Rho)
		if p.MaxErrorRate > 0 {
			a.ceiling = NewSequential(a.family.ceiling, p.Rho)
		}
	}
	a.canary.add(iv.Canary)
	a.comparison.add(iv.Baseline)
	a.stable.add(iv.Stable)
	a.stableBefore += iv.StableBefore
	others := a.comparison.Requests + a.stableBefore
	if p.HasBaseline {
		others += a.stable.Requests
	}
	if total := a.canary.Requests + others; total > 0 {
		a.maxShare = max(a.maxShare, float64(a.canary.Requests)/float64(total))
	}

	res := Result{Look: a.look, Progress: iv.T}
	enough := a.canary.Requests >= p.MinRequests && a.comparison.Requests >= p.MinRequests && a.canary.Requests > 0
	versus := "baseline"
	if !p.HasBaseline {
		versus = "stable"
	}
	samples := fmt.Sprintf("%d vs %d requests", a.canary.Requests, a.comparison.Requests)

	// The 5xx comparison: the canary's share of each interval's 5xx.
	a.errorRate.Look(HypergeometricPMF(iv.Canary.Errors+iv.Baseline.Errors, iv.Canary.Requests, iv.Canary.Requests+iv.Baseline.Requests), iv.Canary.Errors, iv.T)
	c := a.comparisonCheck("error rate", a.errorRate, a.canary.Errors, a.comparison.Errors, a.family.errorRate, versus)
	c.Canary, c.Baseline, c.Samples = rate(a.canary.Errors, a.canary.Requests), rate(a.comparison.Errors, a.comparison.Requests), samples
	res.Checks = append(res.Checks, c)

	if a.ceiling != nil {
		a.ceiling.Look(BinomialPMF(iv.Canary.Requests, p.MaxErrorRate), iv.Canary.Errors, iv.T)
		c := Check{Name: "max error rate", Canary: rate(a.canary.Errors, a.canary.Requests), Baseline: fmt.Sprintf("limit %.2f%%", 100*p.MaxErrorRate),
			Samples: fmt.Sprintf("%d requests", a.canary.Requests), Budget: percent(a.family.ceiling), Boundary: boundaryText(a.ceiling, "5xx on the canary")}
		if a.ceiling.Crossed {
			c.Verdict, c.Reason = Fail, fmt.Sprintf("significantly above the limit: %d 5xx reached the boundary of %d", a.ceiling.Sum, a.ceiling.Boundary)
		} else {
			c.Verdict, c.Reason = Pass, "not significantly above the limit"
		}
		res.Checks = append(res.Checks, c)
	}

	// The mean latency is a guard rail: a gauge, not counts.
	if p.MaxLatency > 0 {
		mean := a.lastMean[0]
		c := Check{Name: "max latency", Canary: seconds(mean), Baseline: seconds(a.lastMean[1]) + fmt.Sprintf(" (limit %s)", seconds(p.MaxLatency)), Samples: samples}
		switch {
		case math.IsNaN(mean):
			a.slowLooks = 0
			c.Reason = "no data (guard rail, outside the false-alarm budget)"
		case mean > p.MaxLatency:
			a.slowLooks++
			c.Verdict, c.Reason = Pass, fmt.Sprintf("mean response time above the limit at %d of %d looks in a row (guard rail, outside the false-alarm budget)", a.slowLooks, LatencyGuardLooks)
			if a.slowLooks >= LatencyGuardLooks {
				c.Verdict = Fail
			}
		default:
			a.slowLooks = 0
			c.Verdict, c.Reason = Pass, "within the limit (guard rail, outside the false-alarm budget)"
		}
		res.Checks = append(res.Checks, c)
	}

	if a.family.latency > 0 {
		res.Checks = append(res.Checks, a.latencyChecks(iv, versus)...)
	}
	if p.ErrorTypes {
		res.Checks = append(res.Checks, a.errorTypes(iv, versus)...)
	}

	if !enough {
		res.Checks[0].Reason = fmt.Sprintf("fewer than %d requests on a side; ", p.MinRequests) + res.Checks[0].Reason
		if res.Checks[0].Verdict == Pass {
			res.Checks[0].Verdict = Inconclusive
		}
	}
	res.Verdict = overall(res.Checks)
	return res
}

// overall is a look's verdict: any failed check fails it; any
// inconclusive one, with none failed, leaves it inconclusive.
func overall(checks []Check) Verdict {
	v := Pass
	for _, c := range checks {
		if c.Verdict == Fail {
			return Fail
		}
		if c.Verdict == Inconclusive {
			v = Inconclusive
		}
	}
	return v
}

// judgeRanges adds the range checks: guard rails outside the budget,
// judged on the query values now.
func (a *Analyzer) judgeRanges(res *Result, values map[string]float64) {
	for _, r := range a.Policy.Ranges {
		c := Check{Name: r.Name, Baseline: bounds(r), Samples: "query"}
		v, ok := values[r.Name]
		switch {
		case !ok || math.IsNaN(v):
			c.Canary, c.Reason = "no data", "the query returned nothing (guard rail, outside the false-alarm budget)"
		case r.Min != nil && v < *r.Min, r.Max != nil && v > *r.Max:
			c.Canary, c.Verdict, c.Reason = fmt.Sprintf("%.4g", v), Fail, "outside the expected range (guard rail, outside the false-alarm budget)"
		default:
			c.Canary, c.Verdict, c.Reason = fmt.Sprintf("%.4g", v), Pass, "within the expected range (guard rail, outside the false-alarm budget)"
		}
		res.Checks = append(res.Checks, c)
	}
	res.Verdict = overall(res.Checks)
}

// comparisonCheck describes a test of the canary's share of some events.
func (a *Analyzer) comparisonCheck(name string, s *Sequential, canary, other int, budget float64, versus string) Check {
	c := Check{Name: name, Budget: percent(budget), Boundary: boundaryOf(s, canary+other)}
	ratio := a.ratioText(canary, other, a.canary.Requests, a.comparison.Requests)
	if s.Crossed {
		c.Verdict, c.Reason = Fail, fmt.Sprintf("significantly higher than the %s's: %d of the %d on the canary reached the boundary of %d; rate ratio %s", versus, canary, canary+other, s.Boundary, ratio)
	} else {
		c.Verdict, c.Reason = Pass, fmt.Sprintf("not significantly higher than the %s's (rate ratio %s)", versus, ratio)
	}
	return c
}

func boundaryOf(s *Sequential, total int) string {
	if s.Boundary <= 0 {
		return "none reachable yet"
	}
	return fmt.Sprintf("fails at ≥ %d of the %d on the canary", s.Boundary, total)
}

func boundaryText(s *Sequential, what string) string {
	if s.Boundary <= 0 {
		return "none reachable yet"
	}
	return fmt.Sprintf("fails at ≥ %d %s", s.Boundary, what)
}

// ratioText is the canary's rate over the comparison's with the exact
// conditional 95% interval: Clopper-Pearson on the canary's share of the events.
func (a *Analyzer) ratioText(canary, other, canaryRequests, otherRequests int) string {
	k := canary + other
	if k == 0 || canaryRequests == 0 || otherRequests == 0 {
		return "n/a (no events)"
	}
	q := float64(canaryRequests) / float64(canaryRequests+otherRequests)
	toRatio := func(pi float64) float64 {
		if pi >= 1 {
			return math.Inf(1)
		}
		return pi / (1 - pi) * (1 - q) / q
	}
	key := [2]int{canary, k}
	ci, ok := a.intervalsCP[key]
	if !ok {
		if a.intervalsCP == nil {
			a.intervalsCP = map[[2]int][2]float64{}
		}
		ci[0], ci[1] = clopperPearson(canary, k, 0.05)
		a.intervalsCP[key] = ci
	}
	lo, hi := ci[0], ci[1]
	return fmt.Sprintf("%s (95%%: %s–%s)", ratioNumber(toRatio(float64(canary)/float64(k))), ratioNumber(toRatio(lo)), ratioNumber(toRatio(hi)))
}

func ratioNumber(r float64) string {
	if math.IsInf(r, 1) {
		return "∞"
	}
	return fmt.Sprintf("%.2g", r)
}

// clopperPearson is the exact two-sided interval of a binomial proportion.
func clopperPearson(x, n int, level float64) (lo, hi float64) {
	solve := func(f func(p float64) float64) float64 {
		a, b := 0.0, 1.0
		for range 30 {
			m := (a + b) / 2
			if f(m) < 0 {
				a = m
			} else {
				b = m
			}
		}
		return (a + b) / 2
	}
	if x > 0 {
		// P(X >= x | p) = I_p(x, n-x+1) rises with p: where it reaches level/2.
		lo = solve(func(p float64) float64 { return regIncBeta(float64(x), float64(n-x+1), p) - level/2 })
	}
	hi = 1
	if x < n {
		// P(X <= x | p) = 1 - I_p(x+1, n-x) falls with p.
		hi = solve(func(p float64) float64 { return regIncBeta(float64(x+1), float64(n-x), p) - (1 - level/2) })
	}
	return lo, hi
}

// latencyChecks choose, at the first look with enough requests, bounds
// from the comparison's response times (near its p50, p90 and p99) and then
// judge, per bound, the canary's share of the requests slower than it in
// every later interval. The calibration interval itself is not judged.
func (a *Analyzer) latencyChecks(iv Interval, versus string) []Check {
	p := a.Policy
	if !a.latencyReady {
		if a.comparison.Requests < p.MinRequests || a.comparison.Latencies == nil {
			return []Check{{Name: "latency", Canary: "calibrating", Samples: fmt.Sprintf("%d %s requests", a.comparison.Requests, versus), Verdict: Pass,
				Reason: fmt.Sprintf("its bounds are taken from the %s's first %d requests", versus, p.MinRequests), Budget: percent(a.family.latency)}}
		}
		a.latencyReady = true
		seen := map[int]bool{}
		for _, q := range []float64{0.5, 0.1, 0.01} {
			b := quantileBound(a.comparison, q)
			if b >= 0 && !seen[b] {
				seen[b] = true
				a.latency = append(a.latency, &latencyTest{bound: b})
			}
		}
		for _, l := range a.latency {
			l.test = NewSequential(a.family.latency/float64(len(a.latency)), p.Rho)
		}
		return []Check{{Name: "latency", Canary: "calibrated", Verdict: Pass, Reason: fmt.Sprintf("bounds from the %s's %d requests; judged from the next look", versus, a.comparison.Requests), Budget: percent(a.family.latency)}}
	}
	var out []Check
	for _, l := range a.latency {
		sc, sb := iv.Canary.slowerThan(l.bound), iv.Baseline.slowerThan(l.bound)
		l.c += sc
		l.b += sb
		l.test.Look(HypergeometricPMF(sc+sb, iv.Canary.Requests, iv.Canary.Requests+iv.Baseline.Requests), sc, iv.T)
		c := a.comparisonCheck(fmt.Sprintf("slower than %s", seconds(LatencyBounds[l.bound])), l.test, l.c, l.b, l.test.Alpha, versus)
		c.Canary, c.Baseline = fmt.Sprintf("%d slow", l.c), fmt.Sprintf("%d slow", l.b)
		c.Samples = fmt.Sprintf("%d vs %d requests", a.canary.Requests, a.comparison.Requests)
		out = append(out, c)
	}
	return out
}

// quantileBound is the smallest bound with at most share q of the requests slower.
func quantileBound(c IntervalCounts, q float64) int {
	if c.Requests == 0 {
		return -1
	}
	for b := range LatencyBounds {
		if float64(c.slowerThan(b)) <= q*float64(c.Requests) {
			return b
		}
	}
	return -1
}

// errorTypes judges every error type: a known one (ever seen outside the
// canary) by the canary's share of its occurrences, and up to down when
// decreases count; a new one (seen only on the canary) by the probability
// that all its occurrences fell on the canary given the canary's share of
// the traffic.
func (a *Analyzer) errorTypes(iv Interval, versus string) []Check {
	p := a.Policy
	names := slices.Sorted(maps.Keys(iv.Types))
	initial := a.look == 1
	if initial {
		known := 0
		for _, n := range names {
			if iv.Types[n].Outside {
				known++
			}
		}
		a.family.initialTypes = known
	}
	for _, name := range names {
		ti := iv.Types[name]
		if _, ok := a.types[name]; !ok && ti.Outside {
			alpha := a.family.typeAlpha(initial, len(a.types)+1)
			t := &typeTest{order: len(a.types) + 1, alphaShare: alpha}
			if p.DetectDecrease {
				t.up, t.down = NewSequential(alpha/2, p.Rho), NewSequential(alpha/2, p.Rho)
			} else {
				t.up = NewSequential(alpha, p.Rho)
			}
			a.types[name] = t
			delete(a.newTypes, name)
		}
		if _, ok := a.types[name]; !ok && ti.Canary > 0 {
			nt := a.newTypes[name]
			if nt == nil {
				nt = &newTypeTest{order: len(a.newTypes) + 1}
				nt.alpha = a.family.newTypeAlpha(nt.order)
				a.newTypes[name] = nt
			}
		}
	}
	var out []Check
	for _, name := range slices.Sorted(maps.Keys(a.types)) {
		t := a.types[name]
		ti := iv.Types[name]
		t.c += ti.Canary
		t.b += ti.Baseline
		n, total := iv.Canary.Requests, iv.Canary.Requests+iv.Baseline.Requests
		t.up.Look(HypergeometricPMF(ti.Canary+ti.Baseline, n, total), ti.Canary, iv.T)
		c := a.comparisonCheck("error type "+name, t.up, t.c, t.b, t.alphaShare, versus)
		c.Canary, c.Baseline = rate(t.c, a.canary.Requests), rate(t.b, a.comparison.Requests)
		c.Samples = fmt.Sprintf("%d vs %d occurrences", t.c, t.b)
		if t.down != nil {
			t.down.Look(HypergeometricPMF(ti.Canary+ti.Baseline, iv.Baseline.Requests, total), ti.Baseline, iv.T)
			if t.down.Crossed && !t.up.Crossed {
				c.Verdict = Fail
				c.Reason = fmt.Sprintf("significantly less frequent than in the %s: %d of the %d on the %s reached the boundary of %d", versus, t.b, t.c+t.b, versus, t.down.Boundary)
			}
		}
		out = append(out, c)
	}
	for _, name := range slices.Sorted(maps.Keys(a.newTypes)) {
		nt := a.newTypes[name]
		nt.count += iv.Types[name].Canary
		if a.maxShare <= 0 || a.maxShare >= 1 {
			continue // no traffic yet, or nothing to compare it with
		}
		prob := math.Pow(a.maxShare, float64(nt.count))
		need := int(math.Ceil(math.Log(nt.alpha) / math.Log(a.maxShare)))
		c := Check{Name: "new error type " + name, Canary: fmt.Sprintf("%d", nt.count), Baseline: fmt.Sprintf("0 (%s and stable never had it)", versus),
			Samples: fmt.Sprintf("canary's share of the traffic at most %.3g", a.maxShare), Budget: percent(nt.alpha),
			Boundary: fmt.Sprintf("fails at ≥ %d occurrences, all on the canary", need)}
		if prob <= nt.alpha {
			c.Verdict, c.Reason = Fail, fmt.Sprintf("a new type of error: all %d occurrences on the canary (p ≤ %.2g)", nt.count, prob)
		} else {
			c.Verdict, c.Reason = Pass, fmt.Sprintf("seen only on the canary, %d times: not yet unlikely by chance (p ≤ %.2g)", nt.count, prob)
		}
		out = append(out, c)
	}
	return out
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
	fmt.Fprintf(&b, "### %s\n\n| step | look | check | canary | baseline | samples | verdict | why | budget | boundary |\n|---|---|---|---|---|---|---|---|---|---|\n", title)
	for _, r := range results {
		for _, c := range r.Checks {
			budget := c.Budget
			if budget == "" {
				budget = "—"
			}
			fmt.Fprintf(&b, "| %d | %d | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.Step, r.Look, c.Name, cell(c.Canary), cell(c.Baseline), cell(c.Samples), c.Verdict, cell(c.Reason), budget, cell(c.Boundary))
		}
	}
	return b.String()
}

// cellEscaper keeps a value inside its Markdown table cell; built once
// (building a Replacer costs more than a report's every Sprintf).
var cellEscaper = strings.NewReplacer("|", "\\|", "\n", " ")

// cell keeps a value inside its Markdown table cell.
func cell(s string) string { return cellEscaper.Replace(s) }
