package analysis

import (
	"math"
	"strings"
	"testing"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

// Known values of the binomial tails.
func TestBinomialTails(t *testing.T) {
	cases := []struct {
		n, k  int
		p     float64
		upper float64
	}{
		{10, 0, 0.3, 1},
		{10, 10, 0.5, 1.0 / 1024},
		{5, 3, 0.5, 16.0 / 32},            // C(5,3)+C(5,4)+C(5,5) = 16
		{4, 1, 0.1, 1 - math.Pow(0.9, 4)}, // 0.3439
		{20, 21, 0.5, 0},
		{1000, 10, 0.005, 0.0318}, // P(X>=10), X~Bin(1000, .005), mean 5
	}
	for _, c := range cases {
		got := BinomialUpperTail(c.n, c.k, c.p)
		if !near(got, c.upper, 5e-4) {
			t.Errorf("P(X>=%d | n=%d p=%g) = %.6f, want %.6f", c.k, c.n, c.p, got, c.upper)
		}
	}
	if got := BinomialLowerTail(5, 2, 0.5); !near(got, 16.0/32, 1e-9) {
		t.Errorf("P(X<=2 | 5, .5) = %v", got)
	}
}

func TestIncreaseTest(t *testing.T) {
	// 20 errors, all in the canary, equal traffic: (1/2)^20.
	if got := IncreaseTest(20, 1000, 0, 1000); !near(got, math.Pow(0.5, 20), 1e-12) {
		t.Errorf("all errors in the canary: p = %g", got)
	}
	// Equal errors and traffic: no evidence.
	if got := IncreaseTest(10, 1000, 10, 1000); got < 0.5 {
		t.Errorf("equal rates: p = %g, want >= 0.5", got)
	}
	// No errors anywhere, or no traffic: p = 1, never a failure.
	if IncreaseTest(0, 1000, 0, 1000) != 1 || IncreaseTest(3, 0, 0, 10) != 1 {
		t.Error("no data must give p = 1")
	}
	// Unequal traffic is accounted for: 10 errors in 100 vs 10 in 1000 is strong evidence.
	if got := IncreaseTest(10, 100, 10, 1000); got > 1e-4 {
		t.Errorf("10/100 vs 10/1000: p = %g", got)
	}
	if got := DecreaseTest(0, 1000, 20, 1000); !near(got, math.Pow(0.5, 20), 1e-12) {
		t.Errorf("decrease: p = %g", got)
	}
}

func TestSpending(t *testing.T) {
	sum := 0.0
	for k := 1; k <= 12; k++ {
		a := LookAlpha(0.025, 2.5, k, 12)
		if a <= 0 {
			t.Fatalf("look %d spends nothing", k)
		}
		if k > 1 && a < LookAlpha(0.025, 2.5, k-1, 12) {
			t.Errorf("rho > 1 must spend more at later looks: look %d %g < look %d", k, a, k-1)
		}
		sum += a
	}
	if !near(sum, 0.025, 1e-12) {
		t.Errorf("the looks spend %g in all, want the budget 0.025", sum)
	}
	if LookAlpha(0.025, 2.5, 13, 12) != 0 {
		t.Error("a look beyond the plan must spend nothing")
	}
}

func TestAnalyzerSampleSize(t *testing.T) {
	a := NewAnalyzer(Policy{MinRequests: 100, Looks: 10})
	// Too few requests: inconclusive, never a pass, even with no errors at all.
	r := a.Judge(Sample{Canary: Counts{Requests: 99}, Baseline: Counts{Requests: 500}})
	if r.Verdict != Inconclusive {
		t.Fatalf("99 requests: %v, want inconclusive", r.Verdict)
	}
	// No data at all is never a pass.
	if r := a.Judge(Sample{}); r.Verdict != Inconclusive {
		t.Fatalf("no data: %v", r.Verdict)
	}
	if r := a.Judge(Sample{Canary: Counts{Requests: 300, Errors: 1}, Baseline: Counts{Requests: 300, Errors: 1}}); r.Verdict != Pass {
		t.Fatalf("equal rates with enough requests: %v %+v", r.Verdict, r.Checks)
	}
}

func TestAnalyzerFailsGrossErrorsEarly(t *testing.T) {
	// 5% errors against 0%, 600 requests a side, at the second of 30 looks.
	a := NewAnalyzer(Policy{MinRequests: 100, Looks: 30})
	a.Judge(Sample{Canary: Counts{Requests: 300, Errors: 15}, Baseline: Counts{Requests: 300}})
	r := a.Judge(Sample{Canary: Counts{Requests: 600, Errors: 30}, Baseline: Counts{Requests: 600}})
	if r.Verdict != Fail {
		t.Fatalf("5%% vs 0%% at look 2: %v %+v", r.Verdict, r.Checks)
	}
	if !strings.Contains(r.Checks[0].Reason, "significantly higher") {
		t.Errorf("reason: %q", r.Checks[0].Reason)
	}
}

func TestAnalyzerNewErrorType(t *testing.T) {
	a := NewAnalyzer(Policy{MinRequests: 10, Looks: 10, NewErrorIntervals: 2})
	base := Sample{Canary: Counts{Requests: 100}, Baseline: Counts{Requests: 100}}
	s1 := base
	s1.ErrorTypes = map[string]TypeCounts{"panic": {Canary: 1}}
	if r := a.Judge(s1); r.Verdict == Fail {
		t.Fatalf("one interval is not enough: %+v", r.Checks)
	}
	s2 := base
	s2.ErrorTypes = map[string]TypeCounts{"panic": {Canary: 3}}
	r := a.Judge(s2)
	if r.Verdict != Fail {
		t.Fatalf("a new type in 2 consecutive intervals must fail: %+v", r.Checks)
	}
	// A type the baseline also has is not new.
	b := NewAnalyzer(Policy{MinRequests: 10, Looks: 10, NewErrorIntervals: 1})
	s3 := base
	s3.ErrorTypes = map[string]TypeCounts{"timeout": {Canary: 2, Baseline: 2}}
	if r := b.Judge(s3); r.Verdict == Fail {
		t.Fatalf("a known type at the same rate failed: %+v", r.Checks)
	}
	// Nor one that stable had.
	s4 := base
	s4.ErrorTypes = map[string]TypeCounts{"timeout": {Canary: 2, Stable: 1}}
	if r := b.Judge(s4); r.Verdict == Fail {
		t.Fatalf("a type stable has is not new: %+v", r.Checks)
	}
}

func TestAnalyzerKnownErrorRateChange(t *testing.T) {
	a := NewAnalyzer(Policy{MinRequests: 100, Looks: 1, DetectDecrease: true})
	s := Sample{Canary: Counts{Requests: 2000}, Baseline: Counts{Requests: 2000},
		ErrorTypes: map[string]TypeCounts{"timeout": {Canary: 60, Baseline: 20}, "auth": {Canary: 0, Baseline: 30}}}
	r := a.Judge(s)
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

func TestAnalyzerLimitsAndRanges(t *testing.T) {
	lo, hi := 0.5, 2.0
	a := NewAnalyzer(Policy{MinRequests: 10, Looks: 1, MaxLatency: 0.2, MaxErrorRate: 0.01,
		Ranges: []Range{{Name: "signups", Min: &lo, Max: &hi}}})
	r := a.Judge(Sample{Canary: Counts{Requests: 1000, Errors: 40, MeanLatency: 0.35}, Baseline: Counts{Requests: 1000, Errors: 40, MeanLatency: 0.1},
		Values: map[string]float64{"signups": 3}})
	want := map[string]Verdict{"error rate": Pass, "max error rate": Fail, "max latency": Fail, "signups": Fail}
	for _, c := range r.Checks {
		if v, ok := want[c.Name]; ok && v != c.Verdict {
			t.Errorf("%s: %v, want %v (%s)", c.Name, c.Verdict, v, c.Reason)
		}
	}
	if r.Verdict != Fail {
		t.Errorf("verdict %v", r.Verdict)
	}
	b := NewAnalyzer(Policy{MinRequests: 10, Looks: 1, Ranges: []Range{{Name: "signups", Min: &lo}}})
	if r := b.Judge(Sample{Canary: Counts{Requests: 100}, Baseline: Counts{Requests: 100}}); r.Verdict != Inconclusive {
		t.Errorf("a query without data must be inconclusive, got %v", r.Verdict)
	}
}

func TestReport(t *testing.T) {
	a := NewAnalyzer(Policy{MinRequests: 10, Looks: 1})
	md := Report("Canary of production/web", []Result{a.Judge(Sample{Canary: Counts{Requests: 100, Errors: 50}, Baseline: Counts{Requests: 100}})})
	for _, want := range []string{"### Canary of production/web", "| look | check | canary | baseline | samples | verdict | why |", "| 1 | error rate | 50.00% (50/100) | 0.00% (0/100) | 100 vs 100 requests | FAIL |"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}
