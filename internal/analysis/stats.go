// Package analysis judges a canary against its baseline: sample-size gates,
// exact tests for error rates, an alpha-spending schedule that keeps the
// false-alarm rate bounded although the data is looked at every interval,
// new error types, and metric ranges. It holds no Terraform or Docker code.
package analysis

import (
	"math"
)

// logBinomPMF is log P(X = k) for X ~ Binomial(n, p).
func logBinomPMF(n, k int, p float64) float64 {
	if p <= 0 {
		if k == 0 {
			return 0
		}
		return math.Inf(-1)
	}
	if p >= 1 {
		if k == n {
			return 0
		}
		return math.Inf(-1)
	}
	lgN, _ := math.Lgamma(float64(n + 1))
	lgK, _ := math.Lgamma(float64(k + 1))
	lgNK, _ := math.Lgamma(float64(n - k + 1))
	return lgN - lgK - lgNK + float64(k)*math.Log(p) + float64(n-k)*math.Log1p(-p)
}

// BinomialUpperTail is P(X >= k) for X ~ Binomial(n, p), summed in log space.
func BinomialUpperTail(n, k int, p float64) float64 {
	if k <= 0 {
		return 1
	}
	if k > n {
		return 0
	}
	return sumPMF(n, k, n, p)
}

// BinomialLowerTail is P(X <= k) for X ~ Binomial(n, p).
func BinomialLowerTail(n, k int, p float64) float64 {
	if k >= n {
		return 1
	}
	if k < 0 {
		return 0
	}
	return sumPMF(n, 0, k, p)
}

func sumPMF(n, from, to int, p float64) float64 {
	maxLog := math.Inf(-1)
	logs := make([]float64, 0, to-from+1)
	for k := from; k <= to; k++ {
		l := logBinomPMF(n, k, p)
		logs = append(logs, l)
		if l > maxLog {
			maxLog = l
		}
	}
	if math.IsInf(maxLog, -1) {
		return 0
	}
	sum := 0.0
	for _, l := range logs {
		sum += math.Exp(l - maxLog)
	}
	return math.Min(1, math.Exp(maxLog)*sum)
}

// IncreaseTest is the one-sided p-value that the canary's error rate is
// higher than the baseline's. Conditional on the total number of errors, the
// canary's share of them is Binomial(total, n_c/(n_c+n_b)) when both rates
// are equal: an exact test, sound at the small counts canaries see.
func IncreaseTest(canaryErrors, canaryRequests, baselineErrors, baselineRequests int) float64 {
	total := canaryErrors + baselineErrors
	if total == 0 || canaryRequests == 0 || baselineRequests == 0 {
		return 1
	}
	q := float64(canaryRequests) / float64(canaryRequests+baselineRequests)
	return BinomialUpperTail(total, canaryErrors, q)
}

// DecreaseTest is the one-sided p-value that the canary's rate is lower.
func DecreaseTest(canaryErrors, canaryRequests, baselineErrors, baselineRequests int) float64 {
	total := canaryErrors + baselineErrors
	if total == 0 || canaryRequests == 0 || baselineRequests == 0 {
		return 1
	}
	q := float64(canaryRequests) / float64(canaryRequests+baselineRequests)
	return BinomialLowerTail(total, canaryErrors, q)
}

// AboveRateTest is the one-sided p-value that the true rate exceeds limit,
// given errors out of requests: a threshold judged with its sampling noise.
func AboveRateTest(errors, requests int, limit float64) float64 {
	if requests == 0 {
		return 1
	}
	return BinomialUpperTail(requests, errors, limit)
}

// regIncBeta is the regularized incomplete beta function I_x(a, b), by its
// continued fraction (modified Lentz): the binomial tails the report's
// intervals need, in tens of operations instead of a sum over every count.
// P(X >= k) for X ~ Binomial(n, p) is I_p(k, n-k+1).
func regIncBeta(a, b, x float64) float64 {
	if x <= 0 {
		return 0
	}
	if x >= 1 {
		return 1
	}
	la, _ := math.Lgamma(a + b)
	lb, _ := math.Lgamma(a)
	lc, _ := math.Lgamma(b)
	front := math.Exp(la - lb - lc + a*math.Log(x) + b*math.Log1p(-x))
	if x > (a+1)/(a+b+2) {
		return 1 - front*betaFraction(b, a, 1-x)/b
	}
	return front * betaFraction(a, b, x) / a
}

func betaFraction(a, b, x float64) float64 {
	const eps, fpmin = 1e-14, 1e-300
	c, d := 1.0, 1-(a+b)*x/(a+1)
	if math.Abs(d) < fpmin {
		d = fpmin
	}
	d = 1 / d
	h := d
	for m := 1; m <= 300; m++ {
		fm := float64(m)
		aa := fm * (b - fm) * x / ((a + 2*fm - 1) * (a + 2*fm))
		for range 2 {
			d = 1 + aa*d
			if math.Abs(d) < fpmin {
				d = fpmin
			}
			c = 1 + aa/c
			if math.Abs(c) < fpmin {
				c = fpmin
			}
			d = 1 / d
			h *= d * c
			aa = -(a + fm) * (a + b + fm) * x / ((a + 2*fm) * (a + 2*fm + 1))
		}
		if math.Abs(d*c-1) < eps {
			break
		}
	}
	return h
}
