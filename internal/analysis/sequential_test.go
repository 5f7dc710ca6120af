package analysis

import (
	"math"
	"strings"
	"testing"
)

// The spent budget is the test's real false-alarm probability: enumerate
// every outcome of three small intervals under the null and count the
// paths that cross a boundary.
func TestSequentialSpendsExactlyWhatCrosses(t *testing.T) {
	type iv struct{ k, n, total int }
	ivs := []iv{{4, 50, 100}, {6, 30, 100}, {5, 70, 100}}
	ts := []float64{0.3, 0.6, 1}
	const alpha = 0.2 // large, so the small counts can spend it
	pmfs := make([][]float64, len(ivs))
	for i, v := range ivs {
		pmfs[i] = HypergeometricPMF(v.k, v.n, v.total)
	}
	var crossed float64
	var spent float64
	var walk func(i int, prob float64, path []int)
	walk = func(i int, prob float64, path []int) {
		if i == len(ivs) {
			return
		}
		for x, p := range pmfs[i] {
			if p == 0 {
				continue
			}
			s := NewSequential(alpha, 2)
			hit := false
			for j, obs := range append(append([]int(nil), path...), x) {
				if s.Look(pmfs[j], obs, ts[j]) {
					hit = true
					break
				}
			}
			if hit {
				crossed += prob * p
				spent = s.Spent()
				continue
			}
			walk(i+1, prob*p, append(append([]int(nil), path...), x))
		}
	}
	walk(0, 1, nil)
	// The spent total after every look, with no crossing observed.
	s := NewSequential(alpha, 2)
	for j := range ivs {
		s.Look(pmfs[j], 0, ts[j])
	}
	if math.Abs(crossed-s.Spent()) > 1e-12 {
		t.Fatalf("the paths that cross have probability %.12f, the test spent %.12f", crossed, s.Spent())
	}
	if s.Spent() > alpha+1e-12 || s.Spent() < alpha/4 {
		t.Fatalf("spent %.4f of %.2f", s.Spent(), alpha)
	}
	_ = spent
}

// Extra looks beyond the plan (t = 1) spend only what discreteness left
// over: the total never passes the budget.
func TestSequentialNeverSpendsMoreThanItsBudget(t *testing.T) {
	s := NewSequential(0.01, 2)
	for i := 0; i < 60; i++ {
		s.Look(HypergeometricPMF(3, 100, 200), 1, math.Min(1, float64(i+1)/20))
		if s.Spent() > 0.01+1e-15 {
			t.Fatalf("look %d: spent %.6f > 0.01", i+1, s.Spent())
		}
	}
	if s.Spent() < 0.005 {
		t.Errorf("60 looks of 3 errors spent only %.4f of 0.01", s.Spent())
	}
}

// One look at t = 1 is the exact conditional test: its boundary is the
// smallest count whose binomial-share tail is within alpha.
func TestSequentialOneLookIsTheExactTest(t *testing.T) {
	s := NewSequential(0.01, 2)
	s.Look(HypergeometricPMF(25, 10000, 20000), 0, 1)
	b := s.Boundary
	tail := func(k int) float64 {
		sum := 0.0
		pmf := HypergeometricPMF(25, 10000, 20000)
		for x := k; x < len(pmf); x++ {
			sum += pmf[x]
		}
		return sum
	}
	if !(tail(b) <= 0.01 && tail(b-1) > 0.01) {
		t.Fatalf("boundary %d: P(>=%d) = %g, P(>=%d) = %g", b, b, tail(b), b-1, tail(b-1))
	}
	// With 10,000 of 20,000 requests the share is about binomial(25, 1/2).
	if got, want := tail(b), BinomialUpperTail(25, b, 0.5); math.Abs(got-want) > 2e-4 {
		t.Errorf("hypergeometric tail %g, binomial %g", got, want)
	}
}

func TestBinomialPMFLargeN(t *testing.T) {
	pmf := BinomialPMF(200000, 0.01)
	sum, mean := 0.0, 0.0
	for k, p := range pmf {
		sum += p
		mean += float64(k) * p
	}
	if math.Abs(sum-1) > 1e-9 || math.Abs(mean-2000) > 0.01 {
		t.Fatalf("sum %g mean %g", sum, mean)
	}
	if len(pmf) > 2500 {
		t.Errorf("the pmf keeps %d counts; its mass is within ~%d", len(pmf), 2400)
	}
	if p := BinomialPMF(10, 0.5); math.Abs(p[5]-252.0/1024) > 1e-12 {
		t.Errorf("P(5 | 10, .5) = %g", p[5])
	}
}

func sample(cr, ce, br, be int) Sample {
	return Sample{Canary: Counts{Requests: cr, Errors: ce, MeanLatency: math.NaN()}, Baseline: Counts{Requests: br, Errors: be, MeanLatency: math.NaN()}}
}

func TestAnalyzerSampleSize(t *testing.T) {
	a := NewAnalyzer(Policy{MinRequests: 100, HasBaseline: true})
	if r := a.Judge(sample(99, 0, 500, 0), 0.1); r.Verdict != Inconclusive {
		t.Fatalf("99 requests: %v, want inconclusive", r.Verdict)
	}
	if r := a.Judge(sample(99, 0, 500, 0), 0.2); r.Verdict != Inconclusive {
		t.Fatalf("no new data: %v", r.Verdict)
	}
	if r := a.Judge(sample(300, 1, 800, 3), 0.3); r.Verdict != Pass {
		t.Fatalf("equal rates with enough requests: %v %+v", r.Verdict, r.Checks)
	}
}

func TestAnalyzerFailsGrossErrorsEarly(t *testing.T) {
	// 5% errors against 0%, 600 requests a side, at a tenth of the plan.
	a := NewAnalyzer(Policy{MinRequests: 100, HasBaseline: true})
	a.Judge(sample(300, 15, 300, 0), 0.05)
	r := a.Judge(sample(600, 30, 600, 0), 0.1)
	if r.Verdict != Fail {
		t.Fatalf("5%% vs 0%% at t = 0.1: %v %+v", r.Verdict, r.Checks)
	}
	c := r.Checks[0]
	if !strings.Contains(c.Reason, "significantly higher than the baseline's: 30 of the 30 on the canary reached the boundary") || !strings.Contains(c.Boundary, "fails at ≥") || c.Budget != "1.00%" {
		t.Errorf("check: %+v", c)
	}
}

// Without a baseline the split moves from step to step; an incident that
// raises every track's errors during the 50% step is not the canary's
// fault. Pooled counts would blame the canary (Simpson's paradox); the
// stratified test does not.
func TestAnalyzerIncidentDuringABigStepIsNotTheCanarys(t *testing.T) {
	a := NewAnalyzer(Policy{MinRequests: 100})
	// 5%: 100 canary / 1,900 stable, 0.5% errors on both.
	a.Judge(sample(100, 0, 1900, 10), 0.1)
	// 50% with an incident: 20% errors on both.
	r := a.Judge(sample(100+1000, 0+200, 1900+1000, 10+200), 1)
	if r.Verdict == Fail {
		t.Fatalf("an incident that hit both sides failed the canary: %+v", r.Checks[0])
	}
}

func TestAnalyzerNewErrorType(t *testing.T) {
	// The canary has 10% of the traffic; stable served 50,000 requests
	// before without the type.
	a := NewAnalyzer(Policy{MinRequests: 10, ErrorTypes: true})
	s := sample(100, 0, 900, 0)
	s.StableBefore = 50000
	s.ErrorTypes = map[string]TypeCounts{"panic": {Canary: 1}}
	r := a.Judge(s, 0.2)
	c := find(r, "new error type panic")
	if c == nil || c.Verdict != Pass {
		t.Fatalf("one occurrence at a share of 0.2%% is not yet unlikely: %+v", c)
	}
	s = sample(200, 0, 1800, 0)
	s.ErrorTypes = map[string]TypeCounts{"panic": {Canary: 3}}
	r = a.Judge(s, 0.4)
	if c := find(r, "new error type panic"); c == nil || c.Verdict != Fail || r.Verdict != Fail {
		t.Fatalf("3 occurrences all on a canary with ~0.4%% of the exposure: %+v", c)
	}
	// A type the baseline or stable also has is not new.
	b := NewAnalyzer(Policy{MinRequests: 10, ErrorTypes: true, HasBaseline: true})
	s = sample(100, 0, 100, 0)
	s.ErrorTypes = map[string]TypeCounts{"timeout": {Canary: 2, Stable: 1}}
	if r := b.Judge(s, 1); r.Verdict == Fail || find(r, "error type timeout") == nil {
		t.Fatalf("a type stable has is known, and equal: %+v", r.Checks)
	}
}

func TestAnalyzerKnownErrorRateChange(t *testing.T) {
	a := NewAnalyzer(Policy{MinRequests: 100, DetectDecrease: true, ErrorTypes: true, HasBaseline: true})
	s := sample(2000, 0, 2000, 0)
	s.ErrorTypes = map[string]TypeCounts{"timeout": {Canary: 60, Baseline: 20}, "auth": {Canary: 0, Baseline: 30}, "rare": {Canary: 3, Baseline: 2}}
	r := a.Judge(s, 1)
	var failed []string
	for _, c := range r.Checks {
		if c.Verdict == Fail {
			failed = append(failed, c.Name)
		}
	}
	if strings.Join(failed, ",") != "error type auth,error type timeout" {
		t.Fatalf("failed checks %v, want the increase of timeout and the decrease of auth", failed)
	}
}

func TestAnalyzerGuardRails(t *testing.T) {
	lo, hi := 0.5, 2.0
	a := NewAnalyzer(Policy{MinRequests: 10, MaxLatency: 0.2, MaxErrorRate: 0.01, HasBaseline: true,
		Ranges: []Range{{Name: "signups", Min: &lo, Max: &hi}}})
	var r Result
	for look := 1; look <= LatencyGuardLooks; look++ {
		s := sample(1000*look, 40*look, 1000*look, 40*look)
		s.Canary.MeanLatency, s.Baseline.MeanLatency = 0.35, 0.1
		s.Values = map[string]float64{"signups": 1}
		r = a.Judge(s, float64(look)/LatencyGuardLooks)
		if c := find(r, "max latency"); look < LatencyGuardLooks && c.Verdict != Pass {
			t.Fatalf("look %d: a gauge over its limit fails only after %d looks in a row: %+v", look, LatencyGuardLooks, c)
		}
	}
	want := map[string]Verdict{"error rate": Pass, "max error rate": Fail, "max latency": Fail, "signups": Pass}
	for name, v := range want {
		if c := find(r, name); c == nil || c.Verdict != v {
			t.Errorf("%s: %+v, want %v", name, c, v)
		}
	}
	if c := find(r, "max latency"); !strings.Contains(c.Reason, "outside the false-alarm budget") {
		t.Errorf("a guard rail must say it is outside the budget: %q", c.Reason)
	}
	b := NewAnalyzer(Policy{MinRequests: 10, HasBaseline: true, Ranges: []Range{{Name: "signups", Min: &lo}}})
	if r := b.Judge(sample(100, 0, 100, 0), 1); r.Verdict != Inconclusive {
		t.Errorf("a query without data must be inconclusive, got %v", r.Verdict)
	}
}

// The tail's share of slow requests is judged against bounds from the
// comparison's first requests: a slower p99 with the same median fails.
func TestAnalyzerLatencyCounts(t *testing.T) {
	bucket := func(v float64) int {
		for i, b := range LatencyBounds {
			if v <= b {
				return i
			}
		}
		return len(LatencyBounds)
	}
	// 1,000 requests: 50% at 20ms, 49% at 50ms, 1% at 200ms; the slow
	// canary has 4% at 300ms instead.
	dist := func(n int, slow float64, at float64) []int {
		l := make([]int, len(LatencyBounds)+1)
		l[bucket(0.02)] += n / 2
		l[bucket(at)] += int(float64(n) * slow)
		l[bucket(0.05)] += n - n/2 - int(float64(n)*slow)
		return l
	}
	a := NewAnalyzer(Policy{MinRequests: 100, HasBaseline: true, SlowRequests: true})
	var cc, bc Counts
	var r Result
	for look := 1; look <= 4; look++ {
		add := func(c *Counts, l []int) {
			c.Requests += 1000
			if c.Latencies == nil {
				c.Latencies = make([]int, len(l))
			}
			for i := range l {
				c.Latencies[i] += l[i]
			}
		}
		add(&cc, dist(1000, 0.04, 0.3))
		add(&bc, dist(1000, 0.01, 0.2))
		r = a.Judge(Sample{Canary: cc, Baseline: bc}, float64(look)/4)
	}
	if r.Verdict != Fail {
		t.Fatalf("4%% slow against 1%%: %v %+v", r.Verdict, r.Checks)
	}
	if c := find(r, "error rate"); c.Budget != "0.80%" {
		t.Errorf("with latency counts the 5xx comparison has 6/7.5 of the budget: %s", c.Budget)
	}
}

// A resumed canary continues the same test: what it spent stays spent.
func TestAnalyzerResumeContinuesTheTest(t *testing.T) {
	p := Policy{MinRequests: 10, HasBaseline: true}
	a := NewAnalyzer(p)
	a.Judge(sample(500, 3, 500, 2), 0.25)
	a.Judge(sample(1000, 7, 1000, 4), 0.5)
	spent := a.errorRate.Spent()
	b := NewAnalyzer(p)
	if err := b.Resume(a.State()); err != nil {
		t.Fatal(err)
	}
	if b.errorRate.Spent() != spent || b.Looks() != 2 {
		t.Fatalf("resumed: spent %g looks %d, want %g and 2", b.errorRate.Spent(), b.Looks(), spent)
	}
	// The resumed collector counts from zero again.
	r := b.Judge(sample(500, 2, 500, 3), 0.75)
	if got := r.Checks[0].Samples; got != "1500 vs 1500 requests" {
		t.Fatalf("after the resume the counts go on from the earlier ones: %s", got)
	}
}

func TestPowerAndRequestsNeeded(t *testing.T) {
	// 200 requests a side over 10 looks cannot catch 1.5% against 0.5%.
	a := NewAnalyzer(Policy{MinRequests: 10, HasBaseline: true})
	for k := 1; k <= 10; k++ {
		a.Judge(sample(20*k, 0, 20*k, k/5), float64(k)/10)
	}
	pw := a.Power(nil)
	if !pw.Underpowered() || pw.Needed < 1500 || pw.Needed > 2500 {
		t.Fatalf("200 a side: %+v", pw)
	}
	// 20,000 a side can.
	b := NewAnalyzer(Policy{MinRequests: 10, HasBaseline: true})
	for k := 1; k <= 10; k++ {
		b.Judge(sample(2000*k, 10*k, 2000*k, 10*k), float64(k)/10)
	}
	if pw := b.Power(nil); pw.Underpowered() || pw.MustCatch != 0.015 {
		t.Fatalf("20,000 a side: %+v", pw)
	}
	// The projected rest of the schedule counts.
	c := NewAnalyzer(Policy{MinRequests: 10, HasBaseline: true})
	c.Judge(sample(2000, 10, 2000, 10), 0.1)
	var future []Exposure
	for k := 2; k <= 10; k++ {
		future = append(future, Exposure{T: float64(k) / 10, Canary: 2000, Comparison: 2000})
	}
	if alone, planned := c.Power(nil), c.Power(future); !alone.Underpowered() || planned.Underpowered() {
		t.Fatalf("a tenth of the plan: %+v; with the rest projected: %+v", alone, planned)
	}
}

func TestMustCatchDefault(t *testing.T) {
	for _, c := range []struct{ base, want float64 }{{0.005, 0.015}, {0.02, 0.03}, {0, 0.003}} {
		if got := MustCatchFor(c.base); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("MustCatchFor(%g) = %g, want %g", c.base, got, c.want)
		}
	}
}

func TestReport(t *testing.T) {
	a := NewAnalyzer(Policy{MinRequests: 10, HasBaseline: true})
	md := Report("Canary of production/web", []Result{a.Judge(sample(100, 50, 100, 0), 1)})
	for _, want := range []string{"### Canary of production/web", "| look | check | canary | baseline | samples | verdict | why | budget | boundary |",
		"| 1 | error rate | 50.00% (50/100) | 0.00% (0/100) | 100 vs 100 requests | FAIL |", "| 1.00% | fails at ≥"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}

func find(r Result, name string) *Check {
	for i := range r.Checks {
		if r.Checks[i].Name == name {
			return &r.Checks[i]
		}
	}
	return nil
}

// The final look's power matches what a single exact test at the end
// catches: the measurement of 2% against 0.5% at 2,000 a side,
// α = 1%, was 97.9%; more requests give more power.
func TestFinalPower(t *testing.T) {
	if got := FinalPower(0.01, 0.005, 0.02, 2000, 2000); math.Abs(got-0.979) > 0.006 {
		t.Errorf("2%% vs 0.5%% at 2,000 a side: %.4f, want about 0.979", got)
	}
	prev := 0.0
	for _, n := range []float64{200, 500, 1000, 2000, 5000} {
		p := FinalPower(0.01, 0.005, 0.015, n, n)
		if p < prev {
			t.Errorf("power at %g a side %.3f < %.3f at fewer", n, p, prev)
		}
		prev = p
	}
	if FinalPower(0.01, 0.005, 0.005, 5000, 5000) != 0 {
		t.Error("no difference to catch must have no power")
	}
}
