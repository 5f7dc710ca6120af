package rollouttest

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/releasekit/terraform-provider-release/internal/canary"
	"github.com/releasekit/terraform-provider-release/internal/naming"
	"github.com/releasekit/terraform-provider-release/internal/rollout"
	"github.com/releasekit/terraform-provider-release/internal/router"
)

func policy(baseline bool, weights ...int) canary.Policy {
	p := canary.Policy{Baseline: baseline, OnInterrupt: "abort",
		// These canaries test the fakes, not the power: they go on regardless.
		Analysis: canary.Analysis{Interval: canary.Duration(30 * time.Second), MinRequests: 100, FailureLimit: 1, InconclusiveLimit: 1, OnUnderpowered: "promote"}}
	for _, w := range weights {
		p.Steps = append(p.Steps, canary.Step{Weight: w, Pause: canary.Duration(2 * time.Minute)})
	}
	return p
}

// release runs one canary of sc through the real deployer.
func release(t *testing.T, sc Scenario, p canary.Policy, seed uint64) (*Stage, *Traffic, rollout.Result, error) {
	t.Helper()
	ctx := context.Background()
	st, err := WithStable(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tr := NewTraffic(sc, seed, st.Routes, st.Clock)
	st.Deployer.Metrics = tr
	spec := Spec(CanaryDigest)
	spec.Canary = &p
	res, err := st.Deployer.Deploy(ctx, spec)
	return st, tr, res, err
}

func TestACanaryThroughTheDeployer(t *testing.T) {
	sc := Scenario{Rate: 20, ErrorRate: 0.001, CanaryErrorRate: 0.001, StableBefore: time.Hour}
	st, tr, res, err := release(t, sc, policy(true, 10, 25), 1)
	if err != nil {
		t.Fatalf("Deploy: %v", err)
	}
	if res.Status.Digest != CanaryDigest || res.Status.Canary != nil || len(res.Status.Drift) != 0 {
		t.Errorf("after the canary: %+v", res.Status)
	}
	if tr.Samples() != 8 {
		t.Errorf("%d samples, want 4 looks at each of 2 steps", tr.Samples())
	}
	if took := st.Clock.Now().Sub(Epoch); took < 4*time.Minute || took > 5*time.Minute {
		t.Errorf("the canary took %s of fake time", took)
	}
	s := tr.LastSample()
	// 10% for 2 minutes and 25% for 2 minutes of 20 requests a second: 840 each.
	if s.Canary.Requests < 700 || s.Canary.Requests > 1000 || s.Baseline.Requests < 700 || s.Baseline.Requests > 1000 {
		t.Errorf("canary %d, baseline %d requests; want about 840 each", s.Canary.Requests, s.Baseline.Requests)
	}
	if s.StableBefore != 72000 || s.Stable.Requests < 2800 || s.Stable.Requests > 3500 {
		t.Errorf("stable before %d, since %d", s.StableBefore, s.Stable.Requests)
	}
	for _, c := range st.Host.Containers() {
		if naming.TrackOf(c.Labels) == naming.TrackBaseline {
			t.Errorf("baseline %s left", c.Name)
		}
	}
}

func TestABadCanaryIsAborted(t *testing.T) {
	sc := Scenario{Rate: 40, ErrorRate: 0.005, CanaryErrorRate: 0.2}
	_, tr, _, err := release(t, sc, policy(false, 10, 25), 2)
	var aborted *rollout.CanaryAbortedError
	if !errors.As(err, &aborted) || aborted.Step != 1 {
		t.Fatalf("Deploy = %v, want an abort at step 1", err)
	}
	if s := tr.LastSample(); s.Baseline.Requests != s.Stable.Requests || s.Baseline.Errors != s.Stable.Errors || s.Canary.Errors == 0 {
		t.Errorf("without a baseline the comparison is stable: %+v", s)
	}
}

// Prometheus error types move only at scrapes; a new type only on the canary.
func TestScrapesAndNewTypes(t *testing.T) {
	st := NewStage()
	ctx := context.Background()
	if _, err := st.Deployer.Deploy(ctx, Spec(StableDigest)); err != nil {
		t.Fatal(err)
	}
	sc := Scenario{Rate: 200, Scrape: time.Minute, StableBefore: time.Hour,
		KnownTypes: []ErrorType{{Name: "timeout", Rate: 0.01, CanaryRate: 0.01}},
		NewTypes:   []ErrorType{{Name: "nil_pointer", CanaryRate: 0.05}}}
	tr := NewTraffic(sc, 3, st.Routes, st.Clock)
	p := policy(true, 50)
	m, err := tr.Open(ctx, p, canary.Target{Environment: "production", Service: "web", Baseline: true}, rollout.RouterRef{})
	if err != nil {
		t.Fatal(err)
	}
	// Half to the canary, half to the baseline, set by hand.
	st.Routes.servers[router.RouteFileName("production", "web")] = []router.Server{{Name: "r1-1"}, {Name: "c2-1", Weight: 128}, {Name: "b1-1", Weight: 128}}
	tr.refresh()
	if err := m.Begin(ctx); err != nil {
		t.Fatal(err)
	}
	changes, prev := 0, -1
	for look := 1; look <= 8; look++ {
		_ = st.Clock.Sleep(ctx, 30*time.Second)
		s, err := m.Sample(ctx)
		if err != nil {
			t.Fatal(err)
		}
		nt := s.ErrorTypes["nil_pointer"]
		if nt.Baseline != 0 || nt.Stable != 0 {
			t.Errorf("a new type outside the canary: %+v", nt)
		}
		if nt.Canary != prev {
			changes++
		}
		prev = nt.Canary
		if kt := s.ErrorTypes["timeout"]; kt.Stable < 7000 {
			t.Errorf("stable's counter of a known type holds the hour before: %+v", kt)
		}
	}
	// 8 looks 30s apart see at most 4 or 5 scrapes.
	if changes > 5 || changes < 3 {
		t.Errorf("the new type's count changed at %d of 8 looks; scrapes every 60s", changes)
	}
}

func TestLatencyIncidentAndReloads(t *testing.T) {
	lat := &Latency{Median: 0.05, Sigma: 0.5, CanaryMedian: 0.05, CanarySigma: 0.5 + math.Log(1.5)/2.326}
	m := newLatencyModel(lat.Median, lat.Sigma)
	if math.Abs(m.mean-0.05*math.Exp(0.125)) > 1e-9 {
		t.Errorf("mean %g", m.mean)
	}
	sc := Scenario{Rate: 100, ErrorRate: 0.01, CanaryErrorRate: 0.01, Latency: lat, Incident: &Incident{Weight: 25, Factor: 10}}
	_, tr, _, err := release(t, sc, policy(true, 10, 25), 4)
	if err != nil {
		var aborted *rollout.CanaryAbortedError
		if !errors.As(err, &aborted) {
			t.Fatal(err)
		}
	}
	s := tr.LastSample()
	sum := 0
	for _, v := range s.Canary.Latencies {
		sum += v
	}
	if sum != s.Canary.Requests || math.IsNaN(s.Canary.MeanLatency) {
		t.Errorf("latency buckets add to %d of %d requests; mean %g", sum, s.Canary.Requests, s.Canary.MeanLatency)
	}
	// 10% of requests at 1% and then 25% at 10% errors: about 5.5% on each side.
	if r := float64(s.Baseline.Errors) / float64(s.Baseline.Requests); r < 0.03 || r > 0.08 {
		t.Errorf("incident: baseline error rate %.3f", r)
	}

	// Through the Collector: without reloads its counts are the served ones.
	for _, reloads := range []bool{false, true} {
		sc := Scenario{Rate: 100, ErrorRate: 0.01, CanaryErrorRate: 0.01, ViaCollector: true, Reloads: reloads, ExtraReload: true}
		_, tr, _, err := release(t, sc, policy(true, 10, 25), 5)
		if err != nil {
			t.Fatal(err)
		}
		served, _ := tr.Served()
		got := tr.LastSample().Canary
		if !reloads && (got.Requests != served.Requests || got.Errors != served.Errors) {
			t.Errorf("without reloads the collector counted %+v of %+v", got, served)
		}
		if reloads && (tr.Reloads() < 3 || got.Requests > served.Requests) {
			t.Errorf("%d reloads; counted %d of %d requests", tr.Reloads(), got.Requests, served.Requests)
		}
	}
}

func TestSamplers(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, c := range []struct {
		n int
		p float64
	}{{50, 0.01}, {1000, 0.005}, {3000, 0.3}, {100, 0.9}} {
		const runs = 20000
		sum, sq := 0.0, 0.0
		for i := 0; i < runs; i++ {
			k := float64(Binomial(rng, c.n, c.p))
			sum += k
			sq += k * k
		}
		mean, v := sum/runs, sq/runs-(sum/runs)*(sum/runs)
		wm, wv := float64(c.n)*c.p, float64(c.n)*c.p*(1-c.p)
		if math.Abs(mean-wm) > 5*math.Sqrt(wv/runs) || math.Abs(v/wv-1) > 0.05 {
			t.Errorf("Binomial(%d, %g): mean %.3f var %.3f, want %.3f %.3f", c.n, c.p, mean, v, wm, wv)
		}
	}
	for _, l := range []float64{0.5, 7, 30, 900} {
		const runs = 20000
		sum, sq := 0.0, 0.0
		for i := 0; i < runs; i++ {
			k := float64(Poisson(rng, l))
			sum += k
			sq += k * k
		}
		mean, v := sum/runs, sq/runs-(sum/runs)*(sum/runs)
		if math.Abs(mean-l) > 5*math.Sqrt(l/runs) || math.Abs(v/l-1) > 0.05 {
			t.Errorf("Poisson(%g): mean %.3f var %.3f", l, mean, v)
		}
	}
}

// BenchmarkCanary is one canary of 20 looks through the deployer, its stable release included.
func BenchmarkCanary(b *testing.B) {
	p := policy(true, 10)
	p.Steps[0].Pause = canary.Duration(10 * time.Minute)
	sc := Scenario{Rate: 2000.0 / 600 / 0.1, ErrorRate: 0.005, CanaryErrorRate: 0.005, StableBefore: time.Hour}
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		st, err := WithStable(ctx)
		if err != nil {
			b.Fatal(err)
		}
		st.Deployer.Metrics = NewTraffic(sc, uint64(i), st.Routes, st.Clock)
		spec := Spec(CanaryDigest)
		spec.Canary = &p
		_, _ = st.Deployer.Deploy(ctx, spec)
	}
}
