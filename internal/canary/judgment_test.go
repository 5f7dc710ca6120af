package canary

import (
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/releasekit/terraform-provider-release/internal/analysis"
)

func TestJudgmentMapsEveryField(t *testing.T) {
	low, high := 0.5, 2.0
	p := Policy{
		Baseline: true,
		Steps:    []Step{{Weight: 5, Pause: Duration(time.Minute)}, {Weight: 50, Pause: Duration(2 * time.Minute)}},
		Analysis: Analysis{
			Interval:          Duration(30 * time.Second),
			MinRequests:       100,
			MaxErrorRate:      0.01,
			MaxLatency:        Duration(250 * time.Millisecond),
			InconclusiveLimit: 1,
			FalseAlarmRate:    0.02,
			MustCatch:         0.03,
			Queries: []Query{
				{Name: "p99", Query: "histogram_quantile(0.99, …)", Max: &high},
				{Name: "throughput", Query: "sum(rate(…))", Min: &low},
			},
			Errors: &Errors{Metric: "app_errors_total", Label: "type", NewTypeIntervals: 3, DetectDecrease: true},
		},
	}
	want := analysis.Policy{
		MinRequests:    100,
		MaxErrorRate:   0.01,
		MaxLatency:     0.25,
		Alpha:          0.02,
		MustCatch:      0.03,
		HasBaseline:    true,
		ErrorTypes:     true,
		DetectDecrease: true,
		Ranges: []analysis.Range{
			{Name: "p99", Max: &high},
			{Name: "throughput", Min: &low},
		},
	}
	if got := p.Judgment(); !reflect.DeepEqual(got, want) {
		t.Errorf("Judgment() =\n%+v\nwant\n%+v", got, want)
	}
}

func TestJudgmentWithoutErrorsOrQueries(t *testing.T) {
	p := Policy{
		Steps:    []Step{{Weight: 20, Pause: Duration(time.Minute)}},
		Analysis: Analysis{Interval: Duration(30 * time.Second), MinRequests: 50},
	}
	want := analysis.Policy{MinRequests: 50}
	if got := p.Judgment(); !reflect.DeepEqual(got, want) {
		t.Errorf("Judgment() = %+v, want %+v: no error monitoring, no ranges, no thresholds", got, want)
	}
}

// The budget is spent by the canary's planned weight × time: 5% for 1m is
// 300 of 6,300 weighted seconds, so the first step ends at t = 1/21.
func TestExposure(t *testing.T) {
	p := Policy{Steps: []Step{{Weight: 5, Pause: Duration(time.Minute)}, {Weight: 25, Pause: Duration(2 * time.Minute)}, {Weight: 50, Pause: Duration(1 * time.Minute)}}}
	cases := []struct {
		step    int
		elapsed time.Duration
		want    float64
	}{
		{0, 30 * time.Second, 150.0 / 6300},
		{0, time.Minute, 300.0 / 6300},
		{0, 5 * time.Minute, 300.0 / 6300}, // retries beyond the pause spend nothing new
		{1, time.Minute, (300.0 + 1500) / 6300},
		{2, time.Minute, 1},
		{2, time.Hour, 1},
	}
	for _, c := range cases {
		if got := p.Exposure(c.step, c.elapsed); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("Exposure(%d, %s) = %g, want %g", c.step, c.elapsed, got, c.want)
		}
	}
	manual := Policy{Steps: []Step{{Weight: 10, Manual: true}}}
	if got := manual.Exposure(0, time.Minute); got != 1 {
		t.Errorf("manual steps only: %g, want 1", got)
	}
}

// The requests a schedule needs give the test its power, and fewer do not.
func TestRequestsNeeded(t *testing.T) {
	p := Policy{Baseline: true, Steps: []Step{{Weight: 5, Pause: Duration(5 * time.Minute)}, {Weight: 25, Pause: Duration(5 * time.Minute)}, {Weight: 50, Pause: Duration(5 * time.Minute)}},
		Analysis: Analysis{Interval: Duration(30 * time.Second)}}
	low, high := p.RequestsNeeded(0.001), p.RequestsNeeded(0.01)
	if low <= high || high < 1000 {
		t.Fatalf("needed %d at 0.1%% and %d at 1%%: a rarer error needs more requests", low, high)
	}
	p.Analysis.MustCatch = 0.05
	if n := p.RequestsNeeded(0.01); n >= high {
		t.Errorf("must_catch 5%% needs %d, more than the default's %d", n, high)
	}
	if got := p.NeedsText(); !strings.Contains(got, "canary requests to catch 5.00% against a 1.0% baseline") {
		t.Errorf("NeedsText() = %q", got)
	}
}

// A policy whose judgment settings are at their defaults keeps the id it
// had before they existed: environments that take the id see no change.
func TestIDLeavesDefaultsOut(t *testing.T) {
	p := Policy{Steps: []Step{{Weight: 10, Pause: Duration(time.Minute)}}, Analysis: Analysis{Interval: Duration(30 * time.Second), MinRequests: 100}, OnInterrupt: "abort"}
	withDefaults := p
	withDefaults.Analysis.FalseAlarmRate, withDefaults.Analysis.OnUnderpowered = DefaultFalseAlarmRate, DefaultOnUnderpowered
	if p.ID() != withDefaults.ID() {
		t.Error("the defaults change the id")
	}
	set := withDefaults
	set.Analysis.OnUnderpowered = "extend"
	if set.ID() == p.ID() {
		t.Error("a setting that is not the default must change the id")
	}
	back, err := Decode(set.ID())
	if err != nil || back.UnderpoweredAction() != "extend" || back.Judgment().Alpha != 0 {
		t.Errorf("decoded %+v, %v", back.Analysis, err)
	}
}
