package canary

import (
	"context"
	"strings"
	"testing"

	"github.com/releasekit/terraform-provider-release/internal/router"
)

// seriesQuerier answers each read with the next reading of every series
// whose selector the query contains.
type seriesQuerier struct {
	fakeQuerier
	// readings by selector part ("revision=\"2\"", "track!=..."): one list per read.
	readings map[string][][]Series
	reads    map[string]int
}

func (q *seriesQuerier) Series(_ context.Context, query string) ([]Series, error) {
	for part, list := range q.readings {
		if strings.Contains(query, part) {
			if q.reads == nil {
				q.reads = map[string]int{}
			}
			i := min(q.reads[part], len(list)-1)
			q.reads[part]++
			return list[i], nil
		}
	}
	return nil, nil
}

func errSeries(container, typ string, v float64) Series {
	return Series{Labels: map[string]string{"container": container, "type": typ}, Value: v}
}

// A crash-looping canary's counter restarts at zero: summed over
// containers, its drop would take its errors away; read per series, every
// restart adds what the counter held.
func TestCollectorErrorCountersAcrossResets(t *testing.T) {
	p := collectorPolicy()
	p.Analysis.Queries = nil
	ok := map[string]router.ServerCounts{"c2-1": {Requests: 100}, "r1-1": {Requests: 100}}
	q := &seriesQuerier{readings: map[string][][]Series{
		// The canary: 5 panics, a restart (2), then 6; a second container steady at 3.
		`revision="2"`: {
			{errSeries("c2-1", "panic", 5), errSeries("c2-2", "panic", 3)},
			{errSeries("c2-1", "panic", 2), errSeries("c2-2", "panic", 3)},
			{errSeries("c2-1", "panic", 6), errSeries("c2-2", "panic", 3)},
		},
		// Stable (no baseline): 40 timeouts before the canary, a restart, then 4 more.
		`track!="baseline"`: {
			{errSeries("r1-1", "timeout", 40)},
			{errSeries("r1-1", "timeout", 42)},
			{errSeries("r1-1", "timeout", 1)},
			{errSeries("r1-1", "timeout", 4)},
		},
	}}
	c := &Collector{Policy: p, Target: target(false), Prometheus: q, Router: replay(ok, ok, ok, ok)}
	if err := c.Begin(context.Background()); err != nil {
		t.Fatal(err)
	}
	var panics, timeouts, stable int
	for range 3 {
		s, err := c.Sample(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		panics, timeouts, stable = s.ErrorTypes["panic"].Canary, s.ErrorTypes["timeout"].Baseline, s.ErrorTypes["timeout"].Stable
	}
	// 5 + 2 + 4 on c2-1 and 3 on c2-2; a sum over containers would say 9.
	if panics != 14 {
		t.Errorf("the canary's panics: %d, want 14 across its restart", panics)
	}
	// Since Begin: +2, then a restart (1), then +3.
	if timeouts != 6 {
		t.Errorf("stable's timeouts since the canary began: %d, want 6 across its restart", timeouts)
	}
	if stable != 4 {
		t.Errorf("stable's timeouts as its counter stands: %d, want 4", stable)
	}
}
