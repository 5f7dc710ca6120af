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

// SpentAlpha is the false-alarm probability allowed up to information
// fraction t, from the power family of spending functions (Kim and DeMets):
// alpha * t^rho. rho = 1 spends evenly, so gross failures stop a canary at
// its first looks; larger rho saves more of alpha for the last looks, where
// the samples are largest.
func SpentAlpha(alpha, rho, t float64) float64 {
	if t <= 0 {
		return 0
	}
	if t >= 1 {
		return alpha
	}
	return alpha * math.Pow(t, rho)
}

// LookAlpha is the significance level of look k of K (1-based): the alpha
// spent between the previous look and this one. By the union bound the
// chance of any false alarm over all looks stays at most alpha; the looks
// are correlated, so the true rate is lower (the simulation measures it).
func LookAlpha(alpha, rho float64, k, looks int) float64 {
	if looks < 1 {
		looks = 1
	}
	if k > looks {
		return 0 // looks beyond the plan spend nothing: they can only be inconclusive or pass
	}
	return SpentAlpha(alpha, rho, float64(k)/float64(looks)) - SpentAlpha(alpha, rho, float64(k-1)/float64(looks))
}
