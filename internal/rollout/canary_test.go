package rollout

import (
	"context"
	"errors"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/releasekit/terraform-provider-release/internal/analysis"
	"github.com/releasekit/terraform-provider-release/internal/canary"
	"github.com/releasekit/terraform-provider-release/internal/naming"
	"github.com/releasekit/terraform-provider-release/internal/router"
)

// metricsFunc is a MetricsSource from a function.
type metricsFunc func(t canary.Target) (CanaryMetrics, error)

func (f metricsFunc) Open(_ context.Context, _ canary.Policy, t canary.Target, _ RouterRef) (CanaryMetrics, error) {
	return f(t)
}

// fakeMetrics serves samples from a function of the look number.
type fakeMetrics struct {
	mu      sync.Mutex
	looks   int
	begun   int
	target  canary.Target
	sample  func(look int) (analysis.Sample, error)
	onLook  func(look int)
	targets []canary.Target
}

func (m *fakeMetrics) Begin(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.begun++
	return nil
}

func (m *fakeMetrics) Sample(context.Context) (analysis.Sample, error) {
	m.mu.Lock()
	m.looks++
	look := m.looks
	m.mu.Unlock()
	if m.onLook != nil {
		m.onLook(look)
	}
	return m.sample(look)
}

// healthySample is a canary and a baseline at the same low error rate, n requests a side per look.
func healthySample(n int) func(int) (analysis.Sample, error) {
	return func(look int) (analysis.Sample, error) {
		r := look * n
		return analysis.Sample{Canary: analysis.Counts{Requests: r, Errors: r / 1000, MeanLatency: 0.01}, Baseline: analysis.Counts{Requests: r, Errors: r / 1000, MeanLatency: 0.01}}, nil
	}
}

func testPolicy(baseline bool) canary.Policy {
	return canary.Policy{
		Steps:    []canary.Step{{Weight: 10, Pause: canary.Duration(30 * time.Second)}, {Weight: 25, Pause: canary.Duration(30 * time.Second)}, {Weight: 50, Pause: canary.Duration(30 * time.Second)}},
		Baseline: baseline,
		// Power is tested on its own (canary_power_test.go): these canaries
		// are too small to have it.
		Analysis: canary.Analysis{Interval: canary.Duration(10 * time.Second), MinRequests: 100, FailureLimit: 1, InconclusiveLimit: 2, OnUnderpowered: "promote"},
		// resume or abort is set per test
		OnInterrupt: "abort",
	}
}

func (h *harness) withCanary(spec Spec, p canary.Policy, m *fakeMetrics) Spec {
	spec.Canary = &p
	h.d.Metrics = metricsFunc(func(t canary.Target) (CanaryMetrics, error) {
		m.targets = append(m.targets, t)
		return m, nil
	})
	return spec
}

// routeWeights records the weights of every route written for production, by track prefix.
func (h *harness) routeHistory() []map[string]int {
	var out []map[string]int
	for _, cfg := range h.routes.history {
		w := map[string]int{}
		for _, s := range router.ParseRouteServers(cfg) {
			w[s.Name[:1]] += s.Weight
		}
		out = append(out, w)
	}
	return out
}

func canaryShare(w map[string]int) int {
	total := w["r"] + w["c"] + w["b"]
	if total == 0 {
		return 0
	}
	return (100*w["c"] + total/2) / total
}

func TestCanaryPromotesThroughEveryStep(t *testing.T) {
	h := newHarness(t)
	h.deploy(webSpec("production", digest1))
	m := &fakeMetrics{sample: healthySample(200)}
	h.routes.history, h.routes.waits = nil, nil
	start := h.clock.Now()

	res := h.deploy(h.withCanary(webSpec("production", digest2), testPolicy(true), m))

	st := res.Status
	if st.Revision != 2 || st.Digest != digest2 || st.Canary != nil || len(st.Drift) != 0 {
		t.Fatalf("after the canary: revision %d %s, canary %+v, drift %q", st.Revision, st.Digest, st.Canary, st.Drift)
	}
	var shares []int
	for _, w := range h.routeHistory() {
		shares = append(shares, canaryShare(w))
	}
	// First the canary and baseline with no traffic, for the router's own
	// check; then 10, 25, 50 on the canary (the baseline gets as much), then
	// everyone on the canary with stable and baseline drained (weights only),
	// then the promotion names the servers r2-*.
	if want := []int{0, 10, 25, 50, 100, 0}; !reflect.DeepEqual(shares, want) {
		t.Errorf("canary shares of the routes written = %v, want %v", shares, want)
	}
	if got, want := h.routedNames("production"), []string{"r2-1", "r2-2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("routed to %v after the promotion, want %v", got, want)
	}
	// The router checks the canary and baseline before any step, the canary
	// again before the promotion, and the promoted servers before retiring.
	if want := [][]string{{"c2-1", "c2-2", "b1-1", "b1-2"}, {"c2-1", "c2-2"}, {"r2-1", "r2-2"}}; !reflect.DeepEqual(h.routes.waits, want) {
		t.Errorf("router waits = %v, want %v", h.routes.waits, want)
	}
	first := router.ParseRouteServers(h.routes.history[1])
	w := map[string]int{}
	for _, s := range first {
		w[s.Name[:1]] += s.Weight
	}
	if w["b"] != w["c"] || w["r"] == 0 {
		t.Errorf("first step weights %v: the baseline must get what the canary gets", w)
	}
	if !strings.Contains(string(h.routes.history[1]), "cookie rls_production_web insert") {
		t.Errorf("a canary route is not sticky:\n%s", h.routes.history[1])
	}
	// The baseline is gone; revision 1 is stopped and kept for a rollback.
	for _, c := range h.host.byLabels("production", 1) {
		if naming.TrackOf(c.Labels) == naming.TrackBaseline {
			t.Errorf("baseline %s still exists", c.Name)
		}
		if c.Running() {
			t.Errorf("%s still runs", c.Name)
		}
	}
	if m.looks != 9 || m.begun != 1 {
		t.Errorf("looks = %d, begun = %d; want 3 looks per step, one Begin", m.looks, m.begun)
	}
	if took := h.clock.Now().Sub(start); took < 90*time.Second {
		t.Errorf("the canary took %s, less than its 90s of pauses", took)
	}
	if tg := m.targets[0]; tg.CanaryRevision != 2 || tg.StableRevision != 1 || !tg.Baseline || tg.CanaryDigest != digest2 || tg.StableDigest != digest1 {
		t.Errorf("target = %+v", tg)
	}
	if !strings.Contains(res.CanaryReport, "promoted") || strings.Count(res.CanaryReport, "| error rate |") != 9 {
		t.Errorf("report:\n%s", res.CanaryReport)
	}
}

func TestCanaryAbortsOnErrorsAtTheFirstStep(t *testing.T) {
	h := newHarness(t)
	h.deploy(webSpec("production", digest1))
	m := &fakeMetrics{sample: func(look int) (analysis.Sample, error) {
		r := look * 1000
		return analysis.Sample{Canary: analysis.Counts{Requests: r, Errors: r / 20}, Baseline: analysis.Counts{Requests: r}}, nil
	}}
	h.routes.history = nil

	_, err := h.d.Deploy(h.ctx, h.withCanary(webSpec("production", digest2), testPolicy(true), m))
	var aborted *CanaryAbortedError
	if !errors.As(err, &aborted) {
		t.Fatalf("Deploy = %v, want a CanaryAbortedError", err)
	}
	if aborted.Step != 1 || aborted.Weight != 10 || aborted.Revision != 2 || aborted.StableRevision != 1 {
		t.Errorf("aborted = %+v", aborted)
	}
	if !strings.Contains(aborted.Why, "error rate") || !strings.Contains(aborted.Report, "| 1 | 1 | error rate | 5.00% (50/1000) | 0.00% (0/1000) |") {
		t.Errorf("why %q, report:\n%s", aborted.Why, aborted.Report)
	}
	// Every user back on revision 1, without stickiness; canary and baseline removed.
	if got, want := h.routedNames("production"), []string{"r1-1", "r1-2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("routed to %v, want %v", got, want)
	}
	for _, c := range h.host.containers {
		if c.c.Labels[naming.LabelRevision] == "2" || naming.TrackOf(c.c.Labels) == naming.TrackBaseline {
			t.Errorf("%s was left behind", c.c.Name)
		}
	}
	st := h.observe("production")
	if st.Revision != 1 || st.Canary != nil || len(st.Drift) != 0 {
		t.Errorf("after the abort: revision %d, canary %+v, drift %q", st.Revision, st.Canary, st.Drift)
	}
}

func TestCanaryWithoutTrafficStaysInconclusiveAndAborts(t *testing.T) {
	h := newHarness(t)
	h.deploy(webSpec("production", digest1))
	m := &fakeMetrics{sample: func(int) (analysis.Sample, error) {
		return analysis.Sample{Canary: analysis.Counts{}, Baseline: analysis.Counts{Requests: 5000}}, nil
	}}
	_, err := h.d.Deploy(h.ctx, h.withCanary(webSpec("production", digest2), testPolicy(false), m))
	var aborted *CanaryAbortedError
	if !errors.As(err, &aborted) || aborted.Step != 1 || !strings.Contains(aborted.Why, "inconclusive") {
		t.Fatalf("Deploy = %v, want an inconclusive abort at step 1", err)
	}
	// 3 planned looks and 2 more allowed by inconclusive_limit.
	if m.looks != 5 {
		t.Errorf("looks = %d, want 5", m.looks)
	}
	if got, want := h.routedNames("production"), []string{"r1-1", "r1-2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("routed to %v, want %v", got, want)
	}
}

func TestCanaryFirstReleaseAndRollbackAreHardSwitches(t *testing.T) {
	h := newHarness(t)
	m := &fakeMetrics{sample: healthySample(200)}
	h.deploy(h.withCanary(webSpec("production", digest1), testPolicy(true), m))
	h.deploy(h.withCanary(webSpec("production", digest2), testPolicy(true), m))
	looks := m.looks
	res := h.deploy(h.withCanary(webSpec("production", digest1), testPolicy(true), m))
	if !(res.Decision.Kind == Rollback) || m.looks != looks || len(m.targets) != 1 {
		t.Errorf("reused %v, looks %d -> %d, canaries %d: the first release and the rollback must not run a canary", (res.Decision.Kind == Rollback), looks, m.looks, len(m.targets))
	}
}

// interrupt runs a canary that stops dead at look n, as a killed process
// would: no cleanup runs.
func (h *harness) interrupt(spec Spec, p canary.Policy, n int) {
	m := &fakeMetrics{sample: healthySample(200)}
	m.onLook = func(look int) {
		if look == n {
			runtime.Goexit()
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = h.d.Deploy(h.ctx, h.withCanary(spec, p, m))
	}()
	<-done
}

func (h *harness) observe(env string) Status {
	managed, _ := ListManaged(h.ctx, h.host)
	files, _ := h.routes.Files(h.ctx, "router-1")
	live, _ := h.routes.LiveServers(h.ctx, "router-1", 0, router.BackendName(env, "web"))
	return ObserveLive(env, "web", managed, "router-1", files, live)
}

func TestCanaryInterruptedThenResumed(t *testing.T) {
	h := newHarness(t)
	h.deploy(webSpec("production", digest1))
	p := testPolicy(true)
	p.OnInterrupt = "resume"
	h.interrupt(webSpec("production", digest2), p, 5) // during step 2

	st := h.observe("production")
	if st.Canary == nil || st.Canary.Revision != 2 || st.Canary.Weight != 25 || st.Revision != 1 {
		t.Fatalf("interrupted: revision %d, canary %+v", st.Revision, st.Canary)
	}
	if !strings.Contains(strings.Join(st.Drift, "\n"), "a canary of revision 2 still gets 25% of traffic") {
		t.Errorf("drift %q does not say a canary is under way", st.Drift)
	}

	m := &fakeMetrics{sample: healthySample(200)}
	res := h.deploy(h.withCanary(webSpec("production", digest2), p, m))
	if res.Status.Revision != 2 || res.Status.Canary != nil || len(res.Status.Drift) != 0 {
		t.Errorf("after resuming: revision %d, canary %+v, drift %q", res.Status.Revision, res.Status.Canary, res.Status.Drift)
	}
	// It resumed at step 2 with the same containers: two steps of looks, nothing new created.
	if m.looks != 6 {
		t.Errorf("looks = %d, want 6 (steps 2 and 3)", m.looks)
	}
	for _, c := range h.host.containers {
		if naming.TrackOf(c.c.Labels) == naming.TrackBaseline || (c.c.State == "running" && c.c.Labels[naming.LabelRevision] != "2") {
			t.Errorf("%s (%s) left behind", c.c.Name, c.c.State)
		}
	}
	// The Engine refuses a second removal of a container being removed.
	seen := map[string]bool{}
	for _, name := range h.host.removed {
		if seen[name] {
			t.Errorf("%s was removed twice", name)
		}
		seen[name] = true
	}
}

func TestCanaryInterruptedThenAborted(t *testing.T) {
	h := newHarness(t)
	h.deploy(webSpec("production", digest1))
	p := testPolicy(true)
	h.interrupt(webSpec("production", digest2), p, 2)

	m := &fakeMetrics{sample: healthySample(200)}
	_, err := h.d.Deploy(h.ctx, h.withCanary(webSpec("production", digest2), p, m))
	var interrupted *InterruptedCanaryError
	if !errors.As(err, &interrupted) || interrupted.Revision != 2 || interrupted.Weight != 10 || interrupted.StableRevision != 1 {
		t.Fatalf("Deploy = %v, want an InterruptedCanaryError", err)
	}
	st := h.observe("production")
	if st.Revision != 1 || st.Canary != nil || len(st.Drift) != 0 || len(st.Baseline) != 0 {
		t.Errorf("after the abort: revision %d, canary %+v, drift %q, baseline %d", st.Revision, st.Canary, st.Drift, len(st.Baseline))
	}
	if got, want := h.routedNames("production"), []string{"r1-1", "r1-2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("routed to %v, want %v", got, want)
	}
	// The next apply starts a new canary, which promotes. (The aborted
	// canary left nothing behind, so its revision number is free again.)
	res := h.deploy(h.withCanary(webSpec("production", digest2), p, m))
	if res.Status.Revision != 2 || res.Status.Digest != digest2 || m.looks != 9 {
		t.Errorf("the next apply: revision %d %s", res.Status.Revision, res.Status.Digest)
	}
}

func TestCanaryInterruptedThenReverted(t *testing.T) {
	h := newHarness(t)
	h.deploy(webSpec("production", digest1))
	h.interrupt(webSpec("production", digest2), testPolicy(false), 2)
	// The change is reverted: the config asks for digest1 again; the canary goes, no error.
	res := h.deploy(h.withCanary(webSpec("production", digest1), testPolicy(false), &fakeMetrics{sample: healthySample(200)}))
	if res.Status.Revision != 1 || res.Status.Canary != nil || len(res.Status.Drift) != 0 {
		t.Errorf("after the revert: revision %d, canary %+v, drift %q", res.Status.Revision, res.Status.Canary, res.Status.Drift)
	}
	if len(h.host.byLabels("production", 2)) != 0 {
		t.Errorf("the canary's containers were left behind")
	}
}

func TestCanaryWhoseMetricsCannotBeReadNeverGetsTraffic(t *testing.T) {
	h := newHarness(t)
	h.deploy(webSpec("production", digest1))
	before := string(h.route("production"))
	spec := webSpec("production", digest2)
	p := testPolicy(true)
	spec.Canary = &p
	h.d.Metrics = metricsFunc(func(canary.Target) (CanaryMetrics, error) {
		return nil, errors.New("the environment variable PROM_PASSWORD (password_env) is empty")
	})
	_, err := h.d.Deploy(h.ctx, spec)
	var metricsErr *CanaryMetricsError
	if !errors.As(err, &metricsErr) || !strings.Contains(err.Error(), "PROM_PASSWORD") {
		t.Fatalf("Deploy = %v, want a CanaryMetricsError naming the variable", err)
	}
	if got := string(h.route("production")); got != before {
		t.Errorf("the route changed:\n%s", got)
	}
	for _, c := range h.host.containers {
		if c.c.Labels[naming.LabelRevision] != "1" || naming.TrackOf(c.c.Labels) == naming.TrackBaseline {
			t.Errorf("%s was left behind", c.c.Name)
		}
	}
}

// A canary that goes dark after a passing look (cut off from its network, or
// hung) keeps its cumulative counts: later looks see no new requests, are
// inconclusive, and the canary is aborted instead of promoted.
func TestCanaryThatStopsGettingTrafficIsNotPromoted(t *testing.T) {
	h := newHarness(t)
	h.deploy(webSpec("production", digest1))
	healthy := healthySample(200)
	m := &fakeMetrics{sample: func(look int) (analysis.Sample, error) { return healthy(min(look, 2)) }}
	_, err := h.d.Deploy(h.ctx, h.withCanary(webSpec("production", digest2), testPolicy(true), m))
	var aborted *CanaryAbortedError
	if !errors.As(err, &aborted) || !strings.Contains(aborted.Why, "no new requests") {
		t.Fatalf("Deploy = %v, want the canary aborted for getting no new requests", err)
	}
	if got, want := h.routedNames("production"), []string{"r1-1", "r1-2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("routed to %v, want every user back on %v", got, want)
	}
}

// A canary whose container died during the last step is never promoted,
// even when its counts looked fine.
func TestCanaryWhoseContainerDiedIsNotPromoted(t *testing.T) {
	h := newHarness(t)
	h.deploy(webSpec("production", digest1))
	m := &fakeMetrics{sample: healthySample(200)}
	p := testPolicy(false)
	looks := int(time.Duration(p.Steps[0].Pause)/time.Duration(p.Analysis.Interval)) * len(p.Steps)
	m.onLook = func(look int) {
		if look == looks {
			for _, c := range h.host.byLabels("production", 2) {
				_ = h.host.Stop(h.ctx, c.ID, 0)
			}
		}
	}
	_, err := h.d.Deploy(h.ctx, h.withCanary(webSpec("production", digest2), p, m))
	var aborted *CanaryAbortedError
	if !errors.As(err, &aborted) || !strings.Contains(aborted.Why, "is exited") {
		t.Fatalf("Deploy = %v, want the canary aborted because its container exited", err)
	}
	if got, want := h.routedNames("production"), []string{"r1-1", "r1-2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("routed to %v, want every user back on %v", got, want)
	}
}
