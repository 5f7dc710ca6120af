package analysis

import (
	"math"
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

func TestRegIncBetaIsTheBinomialTail(t *testing.T) {
	for _, c := range []struct {
		n, k int
		p    float64
	}{{10, 3, 0.2}, {50, 30, 0.5}, {2000, 12, 0.004}, {25, 25, 0.7}, {400, 1, 0.001}} {
		want := BinomialUpperTail(c.n, c.k, c.p)
		if got := regIncBeta(float64(c.k), float64(c.n-c.k+1), c.p); math.Abs(got-want) > 1e-9*math.Max(1, want) && math.Abs(got-want) > 1e-12 {
			t.Errorf("P(X>=%d | %d, %g): beta %g, sum %g", c.k, c.n, c.p, got, want)
		}
	}
	if lo, hi := clopperPearson(5, 10, 0.05); !near(lo, 0.187086, 1e-5) || !near(hi, 0.812914, 1e-5) {
		t.Errorf("Clopper-Pearson 5/10: %g–%g", lo, hi)
	}
}
