package rollouttest

import (
	"math"
	"math/rand/v2"
)

// Exact samplers, fast enough for tens of thousands of canaries: inversion
// for small means, Hörmann's transformed rejection (BTRS, PTRS) for large.

// Binomial draws from Binomial(n, p).
func Binomial(rng *rand.Rand, n int, p float64) int {
	switch {
	case n <= 0 || p <= 0:
		return 0
	case p >= 1:
		return n
	case p > 0.5:
		return n - Binomial(rng, n, 1-p)
	case float64(n)*p < 10:
		return binomialInversion(rng, n, p)
	}
	return binomialBTRS(rng, n, p)
}

func binomialInversion(rng *rand.Rand, n int, p float64) int {
	q := 1 - p
	s := p / q
	a := float64(n+1) * s
	r := math.Pow(q, float64(n))
	u := rng.Float64()
	k := 0
	for u > r {
		u -= r
		k++
		if k > n {
			return n // rounding at the far tail
		}
		r *= a/float64(k) - s
	}
	return k
}

func lgamma(x float64) float64 {
	v, _ := math.Lgamma(x)
	return v
}

// binomialBTRS is Hörmann (1993), "The generation of binomial random
// variates", for n·p ≥ 10 and p ≤ 0.5.
func binomialBTRS(rng *rand.Rand, n int, p float64) int {
	fn := float64(n)
	q := 1 - p
	spq := math.Sqrt(fn * p * q)
	b := 1.15 + 2.53*spq
	a := -0.0873 + 0.0248*b + 0.01*p
	c := fn*p + 0.5
	vr := 0.92 - 4.2/b
	alpha := (2.83 + 5.1/b) * spq
	lpq := math.Log(p / q)
	m := math.Floor((fn + 1) * p)
	h := lgamma(m+1) + lgamma(fn-m+1)
	for {
		u := rng.Float64() - 0.5
		v := rng.Float64()
		us := 0.5 - math.Abs(u)
		k := math.Floor((2*a/us+b)*u + c)
		if k < 0 || k > fn {
			continue
		}
		if us >= 0.07 && v <= vr {
			return int(k)
		}
		v = math.Log(v * alpha / (a/(us*us) + b))
		if v <= h-lgamma(k+1)-lgamma(fn-k+1)+(k-m)*lpq {
			return int(k)
		}
	}
}

// Poisson draws from Poisson(lambda).
func Poisson(rng *rand.Rand, lambda float64) int {
	switch {
	case lambda <= 0:
		return 0
	case lambda < 10:
		l := math.Exp(-lambda)
		k, p := 0, rng.Float64()
		for p > l {
			k++
			p *= rng.Float64()
		}
		return k
	}
	// PTRS: Hörmann (1993), "The transformed rejection method for
	// generating Poisson random variables".
	slam := math.Sqrt(lambda)
	loglam := math.Log(lambda)
	b := 0.931 + 2.53*slam
	a := -0.059 + 0.02483*b
	invalpha := 1.1239 + 1.1328/(b-3.4)
	vr := 0.9277 - 3.6224/(b-2)
	for {
		u := rng.Float64() - 0.5
		v := rng.Float64()
		us := 0.5 - math.Abs(u)
		k := math.Floor((2*a/us+b)*u + lambda + 0.43)
		if us >= 0.07 && v <= vr {
			return int(k)
		}
		if k < 0 || (us < 0.013 && v > us) {
			continue
		}
		if math.Log(v)+math.Log(invalpha)-math.Log(a/(us*us)+b) <= -lambda+k*loglam-lgamma(k+1) {
			return int(k)
		}
	}
}
