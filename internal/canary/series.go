package canary

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/releasekit/terraform-provider-release/internal/analysis"
)

// Series is one time series of an instant query: its labels and value.
type Series struct {
	Labels map[string]string
	Value  float64
}

// key names the series by all its labels.
func (s Series) key() string {
	names := make([]string, 0, len(s.Labels))
	for n := range s.Labels {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "%s=%q,", n, s.Labels[n])
	}
	return b.String()
}

// SeriesQuerier returns every series of a query, unaggregated. With it the
// collector reads the application's error counter per container and
// handles each counter's resets (a restarted container counts from zero
// again), where a sum over containers would take a restart's drop off the
// other containers' errors: a crash-looping canary would hide its errors.
type SeriesQuerier interface {
	Series(ctx context.Context, query string) ([]Series, error)
}

// counterSet adds up each type's counter over the series that carry it,
// across resets.
type counterSet struct {
	last  map[string]float64
	total map[string]float64
}

// add takes one reading. A series seen for the first time counts all it
// holds when fromZero (containers new with the canary), none otherwise (a
// zero point: the reading at Begin). A value below the last one is a reset.
func (c *counterSet) add(series []Series, label string, fromZero bool) {
	if c.last == nil {
		c.last, c.total = map[string]float64{}, map[string]float64{}
	}
	for _, s := range series {
		k, typ := s.key(), typeOf(s.Labels[label], label)
		prev, seen := c.last[k]
		switch {
		case !seen && fromZero, seen && s.Value < prev:
			c.total[typ] += s.Value
		case seen:
			c.total[typ] += s.Value - prev
		default:
			c.total[typ] += 0 // the zero point
		}
		c.last[k] = s.Value
	}
}

func typeOf(value, label string) string {
	if value == "" {
		return "(no " + label + ")"
	}
	return value
}

// errorTypeCountsBySeries reads the error counter per series: canary and
// baseline from zero (their containers are new), stable both as it stands
// (a type stable ever had is known) and since Begin, across resets (the
// comparison without a baseline).
func (c *Collector) errorTypeCountsBySeries(ctx context.Context, q SeriesQuerier) (map[string]analysis.TypeCounts, error) {
	label := c.Policy.Analysis.Errors.Label
	read := func(selector string) ([]Series, error) {
		s, err := q.Series(ctx, c.Policy.Analysis.Errors.Metric+selector)
		if err != nil {
			return nil, fmt.Errorf("the error types: %w", err)
		}
		return s, nil
	}
	canarySeries, err := read(c.selector(c.Target.CanaryRevision, ""))
	if err != nil {
		return nil, err
	}
	stableSeries, err := read(c.stableSelector())
	if err != nil {
		return nil, err
	}
	c.canaryErrors.add(canarySeries, label, true)
	c.stableErrors.add(stableSeries, label, false)
	stable := map[string]float64{}
	for _, s := range stableSeries {
		stable[typeOf(s.Labels[label], label)] += s.Value
	}
	baseline := c.stableErrors.total
	if c.Target.Baseline {
		baselineSeries, err := read(c.selector(c.Target.StableRevision, `,track="baseline"`))
		if err != nil {
			return nil, err
		}
		c.baselineErrors.add(baselineSeries, label, true)
		baseline = c.baselineErrors.total
	}
	canary := c.canaryErrors.total
	out := map[string]analysis.TypeCounts{}
	for _, side := range []map[string]float64{canary, baseline, stable} {
		for t := range side {
			out[t] = analysis.TypeCounts{Canary: count(canary[t]), Baseline: count(baseline[t]), Stable: count(stable[t])}
		}
	}
	return out, nil
}
