package analysis

import (
	"math"
)

// Sequential is a one-sided group-sequential exact test on a count that
// grows interval by interval. Under the null hypothesis each interval adds
// an independent count with a known distribution (the canary's share of the
// interval's errors given their total, or the canary's errors at a rate
// ceiling). The test carries forward, by convolution, the null distribution
// of the running sum over the paths that have not crossed a boundary yet. At
// each look the boundary is the smallest sum whose crossing probability
// keeps everything spent at most Alpha·t^Rho, where t is the planned
// exposure reached: extra looks, and alpha left unspent because counts are
// discrete, carry forward, and the whole test never spends more than Alpha.
//
// Conditioning on each interval's total makes the test exact whatever the
// traffic does between intervals: a split that moves from step to step, or
// an incident that raises every track's errors in one interval, changes the
// interval's distribution, not the test's validity.
type Sequential struct {
	Alpha, Rho float64
	// uncrossed[s] is P(sum = s and no boundary crossed yet) under the null.
	uncrossed []float64
	spent     float64
	// Sum is the observed count so far; Boundary the last look's (-1: none
	// reachable yet); Crossed is set once Sum reached its boundary.
	Sum      int
	Boundary int
	Crossed  bool
	// Max is the largest sum the observed intervals allow.
	Max int
}

// NewSequential starts a test with its share of the false-alarm budget.
func NewSequential(alpha, rho float64) *Sequential {
	return &Sequential{Alpha: alpha, Rho: rho, uncrossed: []float64{1}, Boundary: -1}
}

// Spent is the false-alarm probability the test has used.
func (s *Sequential) Spent() float64 { return s.spent }

// tiny is the probability below which a tail of the distribution is dropped:
// far below any budget, so no boundary moves.
const tiny = 1e-15

// Look adds one interval: nullPMF is the null distribution of the interval's
// count (index = count), observed the count seen. t is the planned exposure
// fraction reached. It returns whether the test crossed its boundary now.
func (s *Sequential) Look(nullPMF []float64, observed int, t float64) bool {
	if s.Crossed {
		s.Sum += observed // for the report; the test has decided
		return true
	}
	if len(nullPMF) > 1 {
		s.uncrossed = convolve(s.uncrossed, nullPMF)
	}
	s.Max += len(nullPMF) - 1
	s.Sum += observed
	b, tail := s.boundary(t)
	if b == 0 {
		// Everything left is within the budget: a sum of 0 never fails.
		b = 1
		tail -= s.uncrossed[0]
	}
	if b < len(s.uncrossed) || tail > 0 {
		s.spent += tail
		s.uncrossed = s.uncrossed[:b]
		s.Boundary = b
	} else {
		s.Boundary = -1 // no count this large is possible yet: nothing to spend
	}
	s.trim()
	if s.Boundary > 0 && s.Sum >= s.Boundary {
		s.Crossed = true
	}
	return s.Crossed
}

// trim drops the negligible upper tail so the distribution stays short.
func (s *Sequential) trim() {
	n, tail := len(s.uncrossed), 0.0
	for n > 1 && tail+s.uncrossed[n-1] < tiny {
		tail += s.uncrossed[n-1]
		n--
	}
	s.uncrossed = s.uncrossed[:n]
}

// boundary is the smallest sum b whose crossing probability, tail =
// P(sum >= b, not crossed before), keeps the spent total within
// Alpha·t^Rho.
func (s *Sequential) boundary(t float64) (b int, tail float64) {
	allowed := s.Alpha*math.Pow(math.Min(math.Max(t, 0), 1), s.Rho) - s.spent
	b = len(s.uncrossed)
	for b > 0 && tail+s.uncrossed[b-1] <= allowed {
		tail += s.uncrossed[b-1]
		b--
	}
	return b, tail
}

func convolve(a, b []float64) []float64 {
	out := make([]float64, len(a)+len(b)-1)
	for i, x := range a {
		if x == 0 {
			continue
		}
		for j, y := range b {
			out[i+j] += x * y
		}
	}
	return out
}

// HypergeometricPMF is the distribution of the canary's share of an
// interval's k events (errors) when the canary served n of the interval's
// total requests and every request was equally likely to fail: k drawn
// without replacement from total, n of them the canary's. Exact for
// binomial counts of equal rates, whatever the rate.
func HypergeometricPMF(k, n, total int) []float64 {
	if k <= 0 || total <= 0 {
		return []float64{1}
	}
	n = min(max(n, 0), total)
	k = min(k, total)
	lo, hi := max(0, k-(total-n)), min(k, n)
	out := make([]float64, hi+1)
	lgC := func(a, b int) float64 {
		x, _ := math.Lgamma(float64(a + 1))
		y, _ := math.Lgamma(float64(b + 1))
		z, _ := math.Lgamma(float64(a - b + 1))
		return x - y - z
	}
	denom := lgC(total, k)
	for x := lo; x <= hi; x++ {
		out[x] = math.Exp(lgC(n, x) + lgC(total-n, k-x) - denom)
	}
	return trimPMF(out)
}

// BinomialPMF is the distribution of the events among n trials at rate p,
// computed outward from its mode so that large n neither underflows nor
// costs more than the few hundred counts that carry any probability.
func BinomialPMF(n int, p float64) []float64 {
	if n <= 0 || p <= 0 {
		return []float64{1}
	}
	if p >= 1 {
		out := make([]float64, n+1)
		out[n] = 1
		return out
	}
	mode := min(n, int(float64(n+1)*p))
	ratio := p / (1 - p)
	// Relative to the mode: pmf(k+1)/pmf(k) = (n-k)/(k+1)·p/(1-p).
	hi := []float64{1}
	for k, v := mode, 1.0; k < n; k++ {
		v *= float64(n-k) / float64(k+1) * ratio
		if v < tiny*1e-3 {
			break
		}
		hi = append(hi, v)
	}
	var lo []float64
	for k, v := mode, 1.0; k > 0; k-- {
		v *= float64(k) / float64(n-k+1) / ratio
		if v < tiny*1e-3 {
			break
		}
		lo = append(lo, v)
	}
	first := mode - len(lo)
	out := make([]float64, mode+len(hi))
	sum := 0.0
	for i, v := range lo {
		out[mode-1-i] = v
		sum += v
	}
	for i, v := range hi {
		out[mode+i] = v
		sum += v
	}
	for i := first; i < len(out); i++ {
		out[i] /= sum
	}
	return out
}

// trimPMF drops the negligible upper tail of a distribution.
func trimPMF(p []float64) []float64 {
	n, tail := len(p), 0.0
	for n > 1 && tail+p[n-1] < tiny {
		tail += p[n-1]
		n--
	}
	return p[:n]
}
