package canary

import (
	"context"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/releasekit/terraform-provider-release/internal/analysis"
	"github.com/releasekit/terraform-provider-release/internal/probe"
	"github.com/releasekit/terraform-provider-release/internal/router"
)

// replay returns one scrape per call; a nil scrape is a failed one.
func replay(scrapes ...map[string]router.ServerCounts) RouterScraper {
	n := 0
	return func(context.Context) (router.ServerScrape, error) {
		s := scrapes[n]
		n++
		if s == nil {
			return router.ServerScrape{}, errors.New("connection refused")
		}
		return router.ServerScrape{Servers: s}, nil
	}
}

// fakeTally answers reads from a list, the last repeating; a nil entry fails.
type fakeTally struct {
	reads  []*probe.Tally
	n      int
	closed bool
}

func (f *fakeTally) Addr() string { return "127.0.0.1:40123" }
func (f *fakeTally) Close()       { f.closed = true }
func (f *fakeTally) Read(context.Context) (probe.Tally, error) {
	t := f.reads[min(f.n, len(f.reads)-1)]
	f.n++
	if t == nil {
		return probe.Tally{}, errors.New("the request tally stopped answering")
	}
	return *t, nil
}

func buckets(fast, slow int64) []int64 {
	b := make([]int64, len(analysis.LatencyBounds)+1)
	b[0], b[len(b)-1] = fast, slow
	return b
}

// The canary's counts come from the tally while it answers, since Begin,
// whatever the router's counters say (here: a reload that reset them);
// stable's counts before Begin are StableBefore; a tally that stops
// answering hands over to the counters, and the sample says so.
func TestCollectorCountsFromTally(t *testing.T) {
	be := "be_prod_web"
	tally := &fakeTally{reads: []*probe.Tally{
		{Dropped: 0, Servers: map[string]map[string]probe.ServerTally{be: {
			"r1-1": {Requests: 40, Errors: 1, LatencyMs: 400, Buckets: buckets(40, 0)},
		}}},
		{Dropped: 0, Servers: map[string]map[string]probe.ServerTally{
			be: {
				"r1-1": {Requests: 940, Errors: 10, LatencyMs: 9400, Buckets: buckets(900, 40)},
				"c2-1": {Requests: 100, Errors: 7, LatencyMs: 3000, Buckets: buckets(90, 10)},
				"b1-1": {Requests: 98, Errors: 1, LatencyMs: 980, Buckets: buckets(98, 0)},
			},
			"be_other_web": {"c2-1": {Requests: 5000, Buckets: buckets(5000, 0)}},
		}},
		{Dropped: 3, Servers: map[string]map[string]probe.ServerTally{be: {
			"c2-1": {Requests: 200, Errors: 9, LatencyMs: 6000, Buckets: buckets(190, 10)},
		}}},
		nil,
	}}
	c := &Collector{Policy: standard(), Target: target(true), Tally: tally, Router: replay(
		map[string]router.ServerCounts{"r1-1": {Requests: 5000}},
		map[string]router.ServerCounts{"r1-1": {Requests: 20}, "c2-1": {Requests: 3}}, // reloaded
		map[string]router.ServerCounts{"r1-1": {Requests: 30}, "c2-1": {Requests: 13}},
		map[string]router.ServerCounts{"r1-1": {Requests: 40}, "c2-1": {Requests: 23, Errors: 1}},
	)}
	ctx := context.Background()
	if err := c.Begin(ctx); err != nil {
		t.Fatal(err)
	}
	if got := c.RequestLog(); got != "127.0.0.1:40123" {
		t.Errorf("RequestLog = %q", got)
	}
	s, err := c.Sample(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Canary.Requests != 100 || s.Canary.Errors != 7 || !near(s.Canary.MeanLatency, 0.03) || s.Canary.Latencies[0] != 90 || s.Canary.Latencies[len(analysis.LatencyBounds)] != 10 {
		t.Errorf("canary %+v, want the tally's 100 requests, 7 errors, 30ms, 90 fast and 10 slow", s.Canary)
	}
	if s.Baseline.Requests != 98 || s.Baseline.Errors != 1 {
		t.Errorf("baseline %+v, want 98/1", s.Baseline)
	}
	if s.Stable.Requests != 900 || s.Stable.Errors != 9 || s.Stable.Latencies[0] != 860 {
		t.Errorf("stable %+v, want 900/9 since Begin, 860 fast", s.Stable)
	}
	if s.StableBefore != 5000 || s.CountsNote != "" {
		t.Errorf("StableBefore %d, note %q; want 5000 and none", s.StableBefore, s.CountsNote)
	}
	s, _ = c.Sample(ctx)
	if s.Canary.Requests != 200 || !strings.Contains(s.CountsNote, "lost 3 lines") {
		t.Errorf("with drops: canary %d, note %q", s.Canary.Requests, s.CountsNote)
	}
	s, _ = c.Sample(ctx)
	if s.Canary.Requests != 23 || s.Canary.Errors != 1 || !strings.Contains(s.CountsNote, "router's counters (the request tally stopped answering)") ||
		!strings.Contains(s.CountsNote, "reloaded at least 1 times") {
		t.Errorf("after the tally ended: canary %+v, note %q", s.Canary, s.CountsNote)
	}
	if err := c.Close(ctx); err != nil || !tally.closed {
		t.Errorf("Close: %v, tally closed %t", err, tally.closed)
	}
}

// fakeQuerier answers queries from a table; answers[query] is a list
// served one per call, the last repeating.
type fakeQuerier struct {
	answers map[string][]map[string]float64
	calls   map[string]int
	asked   []string
	fail    string // a query containing this fails
}

func (f *fakeQuerier) Vector(_ context.Context, query, by string) (map[string]float64, error) {
	f.asked = append(f.asked, query)
	if f.fail != "" && strings.Contains(query, f.fail) {
		return nil, errors.New("querying Prometheus for " + query + ": bad gateway")
	}
	list, ok := f.answers[query]
	if !ok {
		return map[string]float64{}, nil
	}
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	i := f.calls[query]
	f.calls[query]++
	if i >= len(list) {
		i = len(list) - 1
	}
	out := map[string]float64{}
	for k, v := range list[i] {
		out[k] = v
	}
	return out, nil
}

const (
	canaryErrors   = `sum by (type) (app_errors_total{environment="prod",service="web",revision="2"})`
	baselineErrors = `sum by (type) (app_errors_total{environment="prod",service="web",revision="1",track="baseline"})`
	stableErrors   = `sum by (type) (app_errors_total{environment="prod",service="web",revision="1",track!="baseline"})`
	latencyQuery   = `histogram_quantile(0.99, sum(rate(http_seconds_bucket{digest="{{.Digest}}",service="{{.Service}}"}[{{.Interval}}])))`
	latencyAsked   = `histogram_quantile(0.99, sum(rate(http_seconds_bucket{digest="sha256:c",service="web"}[30s])))`
)

func collectorPolicy() Policy {
	p := standard()
	p.Analysis.Prometheus = &Prometheus{URL: "http://127.0.0.1:9090"}
	p.Analysis.Errors = &Errors{Metric: "app_errors_total", Label: "type", NewTypeIntervals: 2}
	max := 0.5
	p.Analysis.Queries = []Query{
		{Name: "p99", Query: latencyQuery, Max: &max},
		{Name: "saturation", Query: `max(sat{service="{{.Service}}",track="{{.Track}}"})`, Max: &max},
	}
	return p
}

func target(baseline bool) Target {
	return Target{Environment: "prod", Service: "web", CanaryRevision: 2, StableRevision: 1,
		CanaryDigest: "sha256:c", StableDigest: "sha256:s", Baseline: baseline, Interval: 30 * time.Second}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestCollectorWithBaseline(t *testing.T) {
	q := &fakeQuerier{answers: map[string][]map[string]float64{
		canaryErrors:   {{"timeout": 3, "panic": 2}},
		baselineErrors: {{"timeout": 2}},
		stableErrors:   {{"timeout": 500, "dbdown": 7}},
		latencyAsked:   {{"": 0.25}},
	}}
	c := &Collector{Policy: collectorPolicy(), Target: target(true), Prometheus: q, Router: replay(
		// Begin: some requests reached canary and baseline before it.
		map[string]router.ServerCounts{"r1-1": {Requests: 1000, Errors: 10}, "c2-1": {Requests: 5}, "b1-1": {Requests: 4}},
		map[string]router.ServerCounts{
			"r1-1": {Requests: 1100, Errors: 11}, "c2-1": {Requests: 105, Errors: 2, MeanLatency: 0.2}, "b1-1": {Requests: 104, Errors: 1, MeanLatency: 0.1},
			"c2-2":  {Requests: 50, Errors: 1, MeanLatency: 0.4}, // first seen after Begin: all of it counts
			"web-1": {Requests: 999, Errors: 999},                // not one of ours
		},
		// A reload restarted every counter.
		map[string]router.ServerCounts{"r1-1": {Requests: 30}, "c2-1": {Requests: 10, Errors: 1, MeanLatency: 0.2}, "c2-2": {Requests: 5, MeanLatency: 0.4}, "b1-1": {Requests: 20, MeanLatency: 0.1}},
	)}
	ctx := context.Background()
	if err := c.Begin(ctx); err != nil {
		t.Fatal(err)
	}
	if len(q.asked) != 0 {
		t.Errorf("with a baseline, Begin asked Prometheus %v", q.asked)
	}
	s, err := c.Sample(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Canary.Requests != 150 || s.Canary.Errors != 3 || !near(s.Canary.MeanLatency, (100*0.2+50*0.4)/150) {
		t.Errorf("canary %+v, want 150 requests, 3 errors, latency weighted by requests", s.Canary)
	}
	if s.Baseline.Requests != 100 || s.Baseline.Errors != 1 || !near(s.Baseline.MeanLatency, 0.1) {
		t.Errorf("baseline %+v, want the baseline server's 100 requests and 1 error, not stable's", s.Baseline)
	}
	wantTypes := map[string]analysis.TypeCounts{
		"timeout": {Canary: 3, Baseline: 2, Stable: 500},
		"panic":   {Canary: 2},
		"dbdown":  {Stable: 7},
	}
	if !reflect.DeepEqual(s.ErrorTypes, wantTypes) {
		t.Errorf("error types %+v, want %+v", s.ErrorTypes, wantTypes)
	}
	if v, ok := s.Values["p99"]; !ok || v != 0.25 {
		t.Errorf("p99 = %v, %v; want 0.25", v, ok)
	}
	if _, ok := s.Values["saturation"]; ok {
		t.Error("a query with no result has a value; it should be missing")
	}
	wantAsked := []string{canaryErrors, stableErrors, baselineErrors, latencyAsked, `max(sat{service="web",track="canary"})`}
	if !reflect.DeepEqual(q.asked, wantAsked) {
		t.Errorf("asked\n %q\nwant\n %q", q.asked, wantAsked)
	}

	s, err = c.Sample(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Canary.Requests != 165 || s.Canary.Errors != 4 || s.Baseline.Requests != 120 || s.Baseline.Errors != 1 {
		t.Errorf("after a reload: canary %+v, baseline %+v; want 165/4 and 120/1", s.Canary, s.Baseline)
	}
}

func TestCollectorWithoutBaseline(t *testing.T) {
	q := &fakeQuerier{answers: map[string][]map[string]float64{
		canaryErrors: {{"timeout": 1, "oom": 1}},
		stableErrors: {
			{"timeout": 500, "dbdown": 7},           // at Begin
			{"timeout": 504, "dbdown": 7, "oom": 1}, // oom first seen in stable after Begin
			{"timeout": 2, "dbdown": 7, "oom": 1},   // a stable container restarted
		},
	}}
	p := collectorPolicy()
	p.Baseline, p.Analysis.Queries = false, nil
	c := &Collector{Policy: p, Target: target(false), Prometheus: q, Router: replay(
		map[string]router.ServerCounts{"r1-1": {Requests: 1000, Errors: 10, MeanLatency: 0.05}, "r1-2": {Requests: 900, Errors: 9}},
		map[string]router.ServerCounts{"r1-1": {Requests: 1300, Errors: 12, MeanLatency: 0.05}, "r1-2": {Requests: 1000, Errors: 9, MeanLatency: 0.08}, "c2-1": {Requests: 40}},
		map[string]router.ServerCounts{"r1-1": {Requests: 1300, Errors: 12, MeanLatency: 0.05}, "r1-2": {Requests: 1000, Errors: 9, MeanLatency: 0.08}, "c2-1": {Requests: 40}},
	)}
	ctx := context.Background()
	if err := c.Begin(ctx); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(q.asked, []string{stableErrors}) {
		t.Errorf("Begin asked %q, want stable's error types only", q.asked)
	}
	s, err := c.Sample(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Baseline.Requests != 400 || s.Baseline.Errors != 2 || !near(s.Baseline.MeanLatency, (300*0.05+100*0.08)/400) {
		t.Errorf("baseline %+v, want stable's 400 requests and 2 errors since Begin", s.Baseline)
	}
	if s.Canary.Requests != 40 || s.Canary.Errors != 0 || s.Canary.MeanLatency != 0 {
		t.Errorf("canary %+v", s.Canary)
	}
	wantTypes := map[string]analysis.TypeCounts{
		"timeout": {Canary: 1, Baseline: 4, Stable: 504},
		"oom":     {Canary: 1, Baseline: 1, Stable: 1},
		"dbdown":  {Baseline: 0, Stable: 7},
	}
	if !reflect.DeepEqual(s.ErrorTypes, wantTypes) {
		t.Errorf("error types %+v, want %+v", s.ErrorTypes, wantTypes)
	}
	s, err = c.Sample(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.ErrorTypes["timeout"]; got.Baseline != 0 || got.Stable != 2 {
		t.Errorf("after stable's counter reset: %+v, want baseline 0 (not negative), stable 2", got)
	}
	if len(s.Values) != 0 {
		t.Errorf("values %v with no queries", s.Values)
	}
}

func TestCollectorNoRequestsHasNoLatency(t *testing.T) {
	p := standard()
	c := &Collector{Policy: p, Target: target(true), Router: replay(
		map[string]router.ServerCounts{"c2-1": {Requests: 10, MeanLatency: 0.3}},
		map[string]router.ServerCounts{"c2-1": {Requests: 10, MeanLatency: 0.3}},
	)}
	if err := c.Begin(context.Background()); err != nil {
		t.Fatal(err)
	}
	s, err := c.Sample(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s.Canary.Requests != 0 || !math.IsNaN(s.Canary.MeanLatency) || !math.IsNaN(s.Baseline.MeanLatency) {
		t.Errorf("canary %+v, baseline %+v; want no requests and NaN latencies", s.Canary, s.Baseline)
	}
	if s.ErrorTypes != nil {
		t.Errorf("error types %v without an errors policy", s.ErrorTypes)
	}
}

func TestCollectorUnlabelledErrors(t *testing.T) {
	q := &fakeQuerier{answers: map[string][]map[string]float64{canaryErrors: {{"": 4}}}}
	p := collectorPolicy()
	p.Analysis.Queries = nil
	c := &Collector{Policy: p, Target: target(true), Prometheus: q, Router: replay(map[string]router.ServerCounts{}, map[string]router.ServerCounts{})}
	if err := c.Begin(context.Background()); err != nil {
		t.Fatal(err)
	}
	s, err := c.Sample(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := s.ErrorTypes["(no type)"]; got.Canary != 4 {
		t.Errorf("error types %v, want the unlabelled errors under (no type)", s.ErrorTypes)
	}
}

func TestCollectorErrors(t *testing.T) {
	ctx := context.Background()
	ok := map[string]router.ServerCounts{"c2-1": {Requests: 1}}
	cases := []struct {
		name      string
		collector *Collector
		begin     bool // the failure is in Begin
		want      string
	}{
		{"router at begin", &Collector{Policy: standard(), Target: target(true), Router: replay(nil)}, true, "router's counters: connection refused"},
		{"router at sample", &Collector{Policy: standard(), Target: target(true), Router: replay(ok, nil)}, false, "router's counters: connection refused"},
		{"no prometheus", &Collector{Policy: collectorPolicy(), Target: target(true), Router: replay(ok)}, true, "no Prometheus client"},
		{"no router", &Collector{Policy: standard(), Target: target(true)}, true, "no router"},
		{"stable errors at begin", &Collector{Policy: collectorPolicy(), Target: target(false), Router: replay(ok), Prometheus: &fakeQuerier{fail: "track!="}}, true, "error types: querying Prometheus"},
		{"canary errors", &Collector{Policy: collectorPolicy(), Target: target(true), Router: replay(ok, ok), Prometheus: &fakeQuerier{fail: `revision="2"`}}, false, "error types: querying Prometheus"},
		{"a query", &Collector{Policy: collectorPolicy(), Target: target(true), Router: replay(ok, ok), Prometheus: &fakeQuerier{fail: "max(sat"}}, false, "the query saturation: querying Prometheus"},
	}
	for _, tc := range cases {
		err := tc.collector.Begin(ctx)
		if !tc.begin {
			if err != nil {
				t.Fatalf("%s: Begin: %v", tc.name, err)
			}
			_, err = tc.collector.Sample(ctx)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
	if _, err := (&Collector{Policy: standard(), Router: replay(ok)}).Sample(ctx); err == nil {
		t.Error("a sample before Begin gave no error")
	}
	p := collectorPolicy()
	p.Analysis.Errors.Metric = `x{a="b"} or vector(1)`
	if err := (&Collector{Policy: p, Target: target(true), Router: replay(ok), Prometheus: &fakeQuerier{}}).Begin(ctx); err == nil {
		t.Error("an error metric that is not a metric name was written into PromQL")
	}
}

func TestSelectorQuotesLabelValues(t *testing.T) {
	c := &Collector{Target: Target{Environment: `a"b`, Service: `c\d`, StableRevision: 3}}
	want := `{environment="a\"b",service="c\\d",revision="3",track!="baseline"}`
	if got := c.stableSelector(); got != want {
		t.Errorf("selector %s, want %s", got, want)
	}
}

// A scrape between samples (before a reload) keeps what the old worker
// counted since the last sample, and does nothing before Begin.
func TestCollectorScrapeNow(t *testing.T) {
	c := &Collector{Policy: standard(), Target: target(true), Router: replay(
		map[string]router.ServerCounts{"c2-1": {Requests: 10}},
		map[string]router.ServerCounts{"c2-1": {Requests: 50, Errors: 2}}, // right before a reload
		map[string]router.ServerCounts{"c2-1": {Requests: 5}},             // the new worker
	)}
	stopped := false
	c.Stop = func() { stopped = true }
	ctx := context.Background()
	c.ScrapeNow(ctx) // before Begin: no scrape taken
	if err := c.Begin(ctx); err != nil {
		t.Fatal(err)
	}
	c.ScrapeNow(ctx)
	s, err := c.Sample(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Canary.Requests != 45 || s.Canary.Errors != 2 || !strings.Contains(s.CountsNote, "reloaded at least 1 times") {
		t.Errorf("canary %+v, note %q; want 40+5 requests, 2 errors, a reload noted", s.Canary, s.CountsNote)
	}
	if err := c.Close(ctx); err != nil || !stopped {
		t.Errorf("Close: %v, stopped %t", err, stopped)
	}
}
