package analysis

import (
	"fmt"
	"math"
)

// The checks' weights in the family budget: the budget is split among the
// checks a canary has in proportion to these (weighted Bonferroni), so the
// chance that any of them fails a canary no worse than its baseline stays
// within the budget however many checks there are.
const (
	weightErrorRate = 6.0
	weightCeiling   = 1.0
	weightKnown     = 1.5
	weightNew       = 1.0
	weightLatency   = 1.5
	// knownReserve is the part of the known types' share kept for types
	// first seen after the first look.
	knownReserve = 0.2
)

// family is the false-alarm budget split among a canary's checks.
type family struct {
	total                                        float64
	errorRate, ceiling, known, newTypes, latency float64
	initialTypes                                 int
}

func newFamily(p Policy, latency bool) *family {
	w := map[string]float64{"errorRate": weightErrorRate}
	if p.MaxErrorRate > 0 {
		w["ceiling"] = weightCeiling
	}
	if p.ErrorTypes {
		w["known"], w["new"] = weightKnown, weightNew
	}
	if latency {
		w["latency"] = weightLatency
	}
	sum := 0.0
	for _, v := range w {
		sum += v
	}
	share := func(k string) float64 { return p.Alpha * w[k] / sum }
	return &family{total: p.Alpha, errorRate: share("errorRate"), ceiling: share("ceiling"), known: share("known"), newTypes: share("new"), latency: share("latency")}
}

// summable is 6/(π²j²): the j-th of any number of later arrivals gets this
// much of a share, and all of them together never more than the share.
func summable(j int) float64 { return 6 / (math.Pi * math.Pi * float64(j*j)) }

// typeAlpha is the budget of the order-th known type: types known at the
// first look split most of the share evenly, later ones draw on the reserve.
func (f *family) typeAlpha(initial bool, order int) float64 {
	if f.initialTypes == 0 {
		return f.known * summable(order)
	}
	if initial || order <= f.initialTypes {
		return f.known * (1 - knownReserve) / float64(f.initialTypes)
	}
	return f.known * knownReserve * summable(order-f.initialTypes)
}

// newTypeAlpha is the budget of the order-th new error type.
func (f *family) newTypeAlpha(order int) float64 { return f.newTypes * summable(order) }

// percent writes a budget share, such as "0.80%".
func percent(alpha float64) string {
	if alpha >= 0.001 {
		return fmt.Sprintf("%.2f%%", 100*alpha)
	}
	return fmt.Sprintf("%.2g%%", 100*alpha)
}
