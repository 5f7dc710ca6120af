package rollout

import (
	"context"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/releasekit/terraform-provider-release/internal/analysis"
	"github.com/releasekit/terraform-provider-release/internal/canary"
	"github.com/releasekit/terraform-provider-release/internal/router"
)

// loggedMetrics is a canary's metrics with a request tally: the canary's
// routes must log to it.
type loggedMetrics struct {
	*fakeMetrics
	closed int
}

func (m *loggedMetrics) RequestLog() string { return "127.0.0.1:40123" }
func (m *loggedMetrics) Close(context.Context) error {
	m.closed++
	return nil
}

// While the canary runs, its routes (the router's check, the steps, the
// drain) log each request to the tally; the routes before and after it are
// the ones a canary without a tally writes, and the tally is closed.
func TestCanaryRoutesLogToTheTallyWhileItRuns(t *testing.T) {
	routesOf := func(m CanaryMetrics) [][]byte {
		h := newHarness(t)
		h.deploy(webSpec("production", digest1))
		h.routes.history = nil
		spec := h.withCanary(webSpec("production", digest2), testPolicy(true), &fakeMetrics{})
		h.d.Metrics = metricsFunc(func(canary.Target) (CanaryMetrics, error) { return m, nil })
		h.deploy(spec)
		return h.routes.history
	}
	plain := routesOf(&fakeMetrics{sample: healthySample(200)})
	m := &loggedMetrics{fakeMetrics: &fakeMetrics{sample: healthySample(200)}}
	logged := routesOf(m)
	if len(plain) != len(logged) || len(logged) < 3 {
		t.Fatalf("%d routes with a tally, %d without", len(logged), len(plain))
	}
	var logs []string
	for i := range logged {
		logs = append(logs, router.RouteRequestLog(logged[i]))
		stripped := strings.Replace(string(logged[i]), "    log 127.0.0.1:40123 format raw local0\n    log-format \""+router.RequestLogFormat+"\"\n", "", 1)
		// Canary and baseline containers start side by side, so which gets
		// which address differs from run to run: compare without them.
		if withoutAddresses(stripped) != withoutAddresses(string(plain[i])) {
			t.Errorf("route %d differs from the canary's without a tally by more than its log:\n%s\nwithout:\n%s", i, logged[i], plain[i])
		}
	}
	want := make([]string, len(logged))
	for i := range want[:len(want)-1] {
		want[i] = "127.0.0.1:40123"
	}
	if !reflect.DeepEqual(logs, want) {
		t.Errorf("request logs of the routes written: %q, want every canary route's and not the promoted one's", logs)
	}
	if m.closed != 1 {
		t.Errorf("the tally was closed %d times, want once", m.closed)
	}
}

var addressPattern = regexp.MustCompile(`\d+\.\d+\.\d+\.\d+:\d+`)

func withoutAddresses(route string) string { return addressPattern.ReplaceAllString(route, "ADDR") }

// A look whose counts may fall short says so, with the totals, without
// changing its verdict.
func TestCountsCheck(t *testing.T) {
	if got := countsCheck(analysis.Sample{Canary: analysis.Counts{Requests: 7}}); len(got) != 1 || got[0].Verdict != analysis.Pass || got[0].Canary != "7 requests, 0 5xx" {
		t.Errorf("exact counts: %+v", got)
	}
	got := countsCheck(analysis.Sample{Canary: analysis.Counts{Requests: 120, Errors: 3}, Baseline: analysis.Counts{Requests: 118}, CountsNote: "counted from the router's counters"})
	if len(got) != 1 || got[0].Verdict != analysis.Inconclusive || got[0].Canary != "120 requests, 3 5xx" || got[0].Baseline != "118 requests, 0 5xx" || got[0].Reason != "counted from the router's counters" {
		t.Errorf("countsCheck = %+v", got)
	}
}
