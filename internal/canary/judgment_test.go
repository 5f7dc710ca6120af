package canary

import (
	"reflect"
	"testing"
	"time"

	"github.com/releasekit/terraform-provider-release/internal/analysis"
)

func TestJudgmentMapsEveryField(t *testing.T) {
	low, high := 0.5, 2.0
	p := Policy{
		// 1m/30s + 1 retry, then 2m/30s + 1 retry: 8 looks.
		Steps: []Step{{Weight: 5, Pause: Duration(time.Minute)}, {Weight: 50, Pause: Duration(2 * time.Minute)}},
		Analysis: Analysis{
			Interval:          Duration(30 * time.Second),
			MinRequests:       100,
			MaxErrorRate:      0.01,
			MaxLatency:        Duration(250 * time.Millisecond),
			InconclusiveLimit: 1,
			Queries: []Query{
				{Name: "p99", Query: "histogram_quantile(0.99, …)", Max: &high},
				{Name: "throughput", Query: "sum(rate(…))", Min: &low},
			},
			Errors: &Errors{Metric: "app_errors_total", Label: "type", NewTypeIntervals: 3, DetectDecrease: true},
		},
	}
	want := analysis.Policy{
		MinRequests:       100,
		MaxErrorRate:      0.01,
		MaxLatency:        0.25,
		Looks:             8,
		NewErrorIntervals: 3,
		DetectDecrease:    true,
		Ranges: []analysis.Range{
			{Name: "p99", Max: &high},
			{Name: "throughput", Min: &low},
		},
	}
	if got := p.Judgment(); !reflect.DeepEqual(got, want) {
		t.Errorf("Judgment() =\n%+v\nwant\n%+v", got, want)
	}
	if p.Judgment().Looks != p.Looks() {
		t.Error("the judgment's looks differ from the policy's")
	}
}

func TestJudgmentWithoutErrorsOrQueries(t *testing.T) {
	p := Policy{
		Steps:    []Step{{Weight: 20, Pause: Duration(time.Minute)}},
		Analysis: Analysis{Interval: Duration(30 * time.Second), MinRequests: 50},
	}
	want := analysis.Policy{MinRequests: 50, Looks: 2}
	if got := p.Judgment(); !reflect.DeepEqual(got, want) {
		t.Errorf("Judgment() = %+v, want %+v: no error monitoring, no ranges, no thresholds", got, want)
	}
}
