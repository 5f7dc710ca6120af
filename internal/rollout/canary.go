package rollout

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/releasekit/terraform-provider-release/internal/analysis"
	"github.com/releasekit/terraform-provider-release/internal/canary"
	"github.com/releasekit/terraform-provider-release/internal/docker"
	"github.com/releasekit/terraform-provider-release/internal/naming"
	"github.com/releasekit/terraform-provider-release/internal/probe"
	"github.com/releasekit/terraform-provider-release/internal/router"
)

// CanaryRun makes Deploy release a new revision as a canary instead of a
// hard switch, whenever a stable revision serves.
type CanaryRun struct {
	Policy canary.Policy
	// Metrics returns what samples the canary for the analysis.
	Metrics func(t canary.Target, routerID string) (CanaryMetrics, error)
}

// CanaryMetrics samples a running canary.
type CanaryMetrics interface {
	// Begin is called once traffic first reaches the canary: counts start there.
	Begin(ctx context.Context) error
	// Sample returns the counts since Begin.
	Sample(ctx context.Context) (analysis.Sample, error)
}

// CanaryAbortedError says the analysis stopped a canary. Every user is back
// on the stable revision and the canary and baseline containers are gone.
type CanaryAbortedError struct {
	Revision       int
	StableRevision int
	Step, Steps    int
	Weight         int
	// Why says in a sentence what stopped it.
	Why string
	// Last is the analysis that decided.
	Last analysis.Result
	// Report holds every analysis, as Markdown.
	Report string
	// RestoredIn is how long it took from the decision until every user was
	// back on stable: the route rewritten and the router reloaded.
	RestoredIn time.Duration
}

func (e *CanaryAbortedError) Error() string {
	return fmt.Sprintf("the canary of revision %d was aborted at step %d of %d (%d%%): %s", e.Revision, e.Step, e.Steps, e.Weight, e.Why)
}

// CanaryMetricsError says a canary could not start because its metrics
// cannot be read. No traffic reached it and its containers were removed.
type CanaryMetricsError struct{ Err error }

func (e *CanaryMetricsError) Error() string {
	return "the canary's metrics cannot be read: " + e.Err.Error()
}
func (e *CanaryMetricsError) Unwrap() error { return e.Err }

// InterruptedCanaryError says an earlier apply stopped mid-canary and, as
// the policy's on_interrupt = "abort" asks, the canary was removed rather
// than resumed.
type InterruptedCanaryError struct {
	Revision, Weight, StableRevision int
}

func (e *InterruptedCanaryError) Error() string {
	return fmt.Sprintf("an earlier apply was interrupted while revision %d was a canary with %d%% of traffic; the canary was aborted and every user is on revision %d", e.Revision, e.Weight, e.StableRevision)
}

// canaryState is a canary under way: who serves and where it stands.
type canaryState struct {
	stable, canary, baseline []docker.Container
	stableRev, canaryRev     int
	stableDigest             string
	// firstStep is where the steps start (a resumed canary skips those done).
	firstStep int
	// route is the route file as the router has it now.
	route []byte
	// before is what ran when the apply started.
	before Status
}

// canaryRoute splits traffic: weight percent to the canary, as much to the
// baseline when there is one, the rest to stable. Every user sticks to the
// server that first answered them, so a user on the canary stays on it as
// its weight grows.
func canaryRoute(spec Spec, st canaryState, weight int) (string, []byte, error) {
	baselineShare := 0
	if len(st.baseline) > 0 {
		baselineShare = weight
	}
	groups := []struct {
		cs    []docker.Container
		track naming.Track
		share int
	}{
		{st.stable, naming.TrackStable, 100 - weight - baselineShare},
		{st.canary, naming.TrackCanary, weight},
		{st.baseline, naming.TrackBaseline, baselineShare},
	}
	// HAProxy weights are per server and at most 256: scale so the largest
	// per-server share gets 256 and the ratios between tracks hold.
	largest := 0.0
	for _, g := range groups {
		if len(g.cs) > 0 {
			largest = math.Max(largest, float64(g.share)/float64(len(g.cs)))
		}
	}
	r := router.Route{
		Environment:   spec.Environment,
		Service:       spec.Service,
		ListenPort:    spec.Router.ListenPort,
		HealthPath:    spec.Health.Path,
		CheckInterval: spec.Health.Interval,
		Sticky:        true,
	}
	for _, g := range groups {
		for _, c := range g.cs {
			w := 0
			if g.share > 0 {
				w = max(1, int(math.Round(float64(g.share)/float64(len(g.cs))*256/largest)))
			}
			r.Servers = append(r.Servers, router.Server{
				Name:    naming.ServerName(g.track, atoi(c.Labels[naming.LabelRevision]), atoi(c.Labels[naming.LabelReplica])),
				Address: c.IPs[spec.Network()] + ":" + strconv.Itoa(portOf(c, spec)),
				Weight:  w,
				Track:   string(g.track),
			})
		}
	}
	cfg, err := router.RenderRoute(r)
	return r.FileName(), cfg, err
}

// portOf is the port a container serves on: its own label, else the spec's
// (containers from before the label existed).
func portOf(c docker.Container, spec Spec) int {
	if p := atoi(c.Labels[naming.LabelPort]); p > 0 {
		return p
	}
	return spec.Port
}

// judgment turns a policy into what the analysis needs.
func judgment(p canary.Policy) analysis.Policy {
	a := p.Analysis
	out := analysis.Policy{
		MinRequests:  a.MinRequests,
		MaxErrorRate: a.MaxErrorRate,
		MaxLatency:   time.Duration(a.MaxLatency).Seconds(),
		Looks:        p.Looks(),
	}
	if a.Errors != nil {
		out.NewErrorIntervals = a.Errors.NewTypeIntervals
		out.DetectDecrease = a.Errors.DetectDecrease
	}
	for _, q := range a.Queries {
		out.Ranges = append(out.Ranges, analysis.Range{Name: q.Name, Min: q.Min, Max: q.Max})
	}
	return out
}

// runCanary takes a canary whose containers are healthy through the steps,
// analysing every interval, and promotes it or aborts it.
func (d *Deployer) runCanary(ctx context.Context, spec Spec, run *CanaryRun, st canaryState) (Result, error) {
	policy := run.Policy
	cleanup := append(append([]docker.Container(nil), st.canary...), st.baseline...)
	if policy.Baseline && len(st.baseline) == 0 {
		baseline, err := d.startBaseline(ctx, spec, st)
		if err != nil {
			d.removeContainers(ctx, spec, append(st.canary, baseline...))
			return Result{}, fmt.Errorf("starting the baseline of revision %d: %w", st.stableRev, err)
		}
		st.baseline = baseline
		cleanup = append(cleanup, baseline...)
	}

	metrics, err := run.Metrics(canary.Target{
		Environment: spec.Environment, Service: spec.Service,
		CanaryRevision: st.canaryRev, StableRevision: st.stableRev,
		CanaryDigest: spec.Digest, StableDigest: st.stableDigest,
		Baseline: len(st.baseline) > 0,
		Interval: time.Duration(policy.Analysis.Interval),
	}, spec.Router.ContainerID)
	if err != nil {
		d.removeContainers(ctx, spec, cleanup)
		return Result{}, &CanaryMetricsError{Err: err}
	}

	analyzer := analysis.NewAnalyzer(judgment(policy))
	var results []analysis.Result
	failures := 0
	abort := func(step int, why string, last analysis.Result) (Result, error) {
		report := analysis.Report(fmt.Sprintf("Canary of %s/%s revision %d: aborted", spec.Environment, spec.Service, st.canaryRev), results)
		restored, err := d.restoreStable(ctx, spec, st, cleanup)
		if err != nil {
			return Result{CanaryReport: report}, fmt.Errorf("aborting the canary (%s): %w", why, err)
		}
		report += fmt.Sprintf("\nAborted at step %d of %d (%d%%): %s. Every user was back on revision %d %s after the decision.\n",
			step+1, len(policy.Steps), policy.Steps[step].Weight, why, st.stableRev, restored.Round(time.Millisecond))
		return Result{CanaryReport: report}, &CanaryAbortedError{
			Revision: st.canaryRev, StableRevision: st.stableRev,
			Step: step + 1, Steps: len(policy.Steps), Weight: policy.Steps[step].Weight,
			Why: why, Last: last, Report: report, RestoredIn: restored,
		}
	}

	interval := time.Duration(policy.Analysis.Interval)
	begun := false
	for i := st.firstStep; i < len(policy.Steps); i++ {
		step := policy.Steps[i]
		name, cfg, err := canaryRoute(spec, st, step.Weight)
		if err == nil && string(cfg) != string(st.route) {
			d.log("canary step", "step", i+1, "weight", step.Weight, "revision", st.canaryRev)
			err = d.applyRoute(ctx, spec.Router.ContainerID, name, cfg, st.route)
		}
		if err != nil {
			return abort(i, "the router refused the split: "+err.Error(), analysis.Result{})
		}
		st.route = cfg
		if !begun {
			if err := metrics.Begin(ctx); err != nil {
				return abort(i, "its metrics cannot be read: "+err.Error(), analysis.Result{})
			}
			begun = true
		}

		stepStart := d.Clock.Now()
		planned := int(time.Duration(step.Pause) / interval)
		last := analysis.Inconclusive
		for look := 1; look <= planned+policy.Analysis.InconclusiveLimit; look++ {
			if look > planned && last == analysis.Pass {
				break
			}
			if err := d.Clock.Sleep(ctx, stepStart.Add(time.Duration(look)*interval).Sub(d.Clock.Now())); err != nil {
				// Cancelled (Ctrl-C or the timeout): never leave a half-judged canary serving.
				return abort(i, "the apply was cancelled ("+err.Error()+")", analysis.Result{})
			}
			res := d.analyse(ctx, analyzer, metrics)
			res.Step = i + 1
			results = append(results, res)
			last = res.Verdict
			d.log("canary analysis", "step", i+1, "look", res.Look, "verdict", res.Verdict.String())
			if res.Verdict == analysis.Fail {
				failures++
				if failures >= policy.Analysis.FailureLimit {
					return abort(i, fmt.Sprintf("%d failed analyses (failure_limit %d): %s", failures, policy.Analysis.FailureLimit, failedChecks(res)), res)
				}
			}
		}
		if last != analysis.Pass {
			lastRes := results[len(results)-1]
			why := fmt.Sprintf("still inconclusive after %d more analyses (inconclusive_limit): %s; a canary that cannot be judged is never promoted", policy.Analysis.InconclusiveLimit, inconclusiveChecks(lastRes))
			if last == analysis.Fail {
				why = "the last analysis of the step failed: " + failedChecks(lastRes)
			}
			return abort(i, why, lastRes)
		}
		// What is left of the pause after the last look.
		if rest := stepStart.Add(time.Duration(step.Pause)).Sub(d.Clock.Now()); rest > 0 {
			if err := d.Clock.Sleep(ctx, rest); err != nil {
				return abort(i, "the apply was cancelled ("+err.Error()+")", analysis.Result{})
			}
		}
	}

	report := analysis.Report(fmt.Sprintf("Canary of %s/%s revision %d: promoted", spec.Environment, spec.Service, st.canaryRev), results)
	d.log("canary passed every step; promoting", "revision", st.canaryRev)
	res, err := d.promote(ctx, spec, st.before, st.canary, st.canaryRev, st.route, append(st.before.Containers, st.baseline...))
	res.CanaryReport = report
	return res, err
}

// analyse takes one look; metrics that cannot be read make it inconclusive.
func (d *Deployer) analyse(ctx context.Context, a *analysis.Analyzer, m CanaryMetrics) analysis.Result {
	sample, err := m.Sample(ctx)
	if err != nil {
		return analysis.Result{Verdict: analysis.Inconclusive, Checks: []analysis.Check{{Name: "metrics", Canary: "no data", Verdict: analysis.Inconclusive, Reason: err.Error()}}}
	}
	return a.Judge(sample)
}

func failedChecks(r analysis.Result) string { return checksWith(r, analysis.Fail) }

func inconclusiveChecks(r analysis.Result) string { return checksWith(r, analysis.Inconclusive) }

func checksWith(r analysis.Result, v analysis.Verdict) string {
	var parts []string
	for _, c := range r.Checks {
		if c.Verdict == v {
			parts = append(parts, fmt.Sprintf("%s (canary %s, baseline %s): %s", c.Name, c.Canary, c.Baseline, c.Reason))
		}
	}
	if len(parts) == 0 {
		return "no check decided"
	}
	return strings.Join(parts, "; ")
}

// startBaseline starts fresh containers of the stable revision, configured
// as the stable ones are, so the canary is compared with containers of its
// own age.
func (d *Deployer) startBaseline(ctx context.Context, spec Spec, st canaryState) ([]docker.Container, error) {
	arch, err := d.Host.Architecture(ctx)
	if err != nil {
		return nil, err
	}
	probeBin, err := probe.Binary(arch)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(st.stable))
	idx := make([]string, len(st.stable))
	for i := range idx {
		idx[i] = strconv.Itoa(i)
	}
	err = parallel(idx, func(s string) error {
		i := atoi(s)
		full, err := d.Host.Inspect(ctx, st.stable[i].ID)
		if err != nil {
			return err
		}
		cs := d.containerSpec(baselineSpec(spec, full), st.stableRev, atoi(full.Labels[naming.LabelReplica]), naming.TrackBaseline, full.Labels[naming.LabelConfigHash], nil, probeBin)
		ids[i], err = d.Host.Create(ctx, cs)
		return err
	})
	if err == nil {
		d.log("starting the baseline", "revision", st.stableRev)
		err = parallel(ids, func(id string) error { return d.Host.Start(ctx, id) })
	}
	var healthy []docker.Container
	if err == nil {
		healthy, err = d.waitHealthy(ctx, spec, ids)
	}
	if err != nil {
		d.cleanup(ids)
		return nil, err
	}
	return healthy, nil
}

// baselineSpec is the spec of a stable container, read from the container itself.
func baselineSpec(spec Spec, c docker.Container) Spec {
	s := spec
	s.Image = c.Labels[naming.LabelImage]
	s.Digest = c.Labels[naming.LabelDigest]
	s.Port = portOf(c, spec)
	s.Command = c.Cmd
	s.Env = map[string]string{}
	for _, kv := range c.Env {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "RELEASE_ENVIRONMENT", "RELEASE_SERVICE", "RELEASE_REVISION":
			continue
		}
		s.Env[k] = v
	}
	return s
}

// restoreStable puts every user back on the stable revision, then removes
// the canary and baseline containers, which finish their requests first.
// It returns how long the route took to reach the router.
func (d *Deployer) restoreStable(ctx context.Context, spec Spec, st canaryState, remove []docker.Container) (time.Duration, error) {
	ctx = context.WithoutCancel(ctx)
	start := d.Clock.Now()
	name, cfg, err := routeFor(spec, st.stable)
	if err != nil {
		return 0, err
	}
	if string(cfg) != string(st.route) {
		if err := d.applyRoute(ctx, spec.Router.ContainerID, name, cfg, st.route); err != nil {
			return 0, fmt.Errorf("routing every user back to revision %d: %w", st.stableRev, err)
		}
	}
	restored := d.Clock.Now().Sub(start)
	d.log("aborting the canary: every user back on stable", "revision", st.stableRev, "after", restored.String())
	d.removeContainers(ctx, spec, remove)
	return restored, nil
}

// removeContainers stops and removes a canary's containers, even when the
// apply was cancelled: none may be left behind.
func (d *Deployer) removeContainers(ctx context.Context, spec Spec, cs []docker.Container) {
	ids := make([]string, 0, len(cs))
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	_ = d.stopAndRemove(context.WithoutCancel(ctx), spec.StopTimeout, ids)
}

// settleInterrupted deals with a canary an earlier apply left mid-way. It
// returns the canary to resume, or nil once the canary is removed and
// stable serves alone.
func (d *Deployer) settleInterrupted(ctx context.Context, spec Spec, before Status, route []byte) (*canaryState, error) {
	var stable []docker.Container
	byRev := map[int][]docker.Container{}
	for _, c := range before.Containers {
		if naming.TrackOf(c.Labels) == naming.TrackBaseline {
			continue
		}
		byRev[atoi(c.Labels[naming.LabelRevision])] = append(byRev[atoi(c.Labels[naming.LabelRevision])], c)
	}
	for _, c := range byRev[before.Revision] {
		if c.Running() {
			stable = append(stable, c)
		}
	}
	if before.Canary == nil {
		// The canary was promoted; only its baseline was left behind.
		d.log("removing the baseline of a finished canary")
		d.removeContainers(ctx, spec, before.Baseline)
		return nil, nil
	}
	if len(stable) == 0 {
		return nil, fmt.Errorf("an interrupted canary of revision %d was found, but no container of the stable revision %d runs to put traffic back on; "+
			"start them again (docker start %s-%s-r%d-<replica>) and apply again, so that the canary can be resumed or removed without leaving users on nothing",
			before.Canary.Revision, before.Revision, spec.Environment, spec.Service, before.Revision)
	}
	cs := byRev[before.Canary.Revision]
	st := &canaryState{
		stable: stable, canary: cs, baseline: before.Baseline,
		stableRev: before.Revision, canaryRev: before.Canary.Revision, stableDigest: before.Digest,
		route: route, before: before,
	}
	if spec.Canary != nil && spec.Canary.Policy.OnInterrupt == "resume" && resumable(spec, *st) {
		// Resume at the step the split had reached; counts start again.
		for st.firstStep < len(spec.Canary.Policy.Steps)-1 && spec.Canary.Policy.Steps[st.firstStep].Weight < before.Canary.Weight-1 {
			st.firstStep++
		}
		d.log("resuming an interrupted canary", "revision", st.canaryRev, "step", st.firstStep+1)
		return st, nil
	}
	if _, err := d.restoreStable(ctx, spec, *st, append(append([]docker.Container(nil), cs...), before.Baseline...)); err != nil {
		return nil, err
	}
	if spec.Canary != nil && spec.Canary.Policy.OnInterrupt == "abort" && before.Canary.Digest == spec.Digest {
		return nil, &InterruptedCanaryError{Revision: before.Canary.Revision, Weight: before.Canary.Weight, StableRevision: before.Revision}
	}
	return nil, nil
}

// resumable says whether a found canary is the one the spec asks for, whole and running.
func resumable(spec Spec, st canaryState) bool {
	if len(st.canary) != spec.Replicas || st.canary[0].Labels[naming.LabelDigest] != spec.Digest || st.canary[0].Labels[naming.LabelConfigHash] != spec.ConfigHash() {
		return false
	}
	if spec.Canary.Policy.Baseline != (len(st.baseline) > 0) {
		return false
	}
	for _, c := range append(append([]docker.Container(nil), st.canary...), st.baseline...) {
		if !c.Running() || c.Health == "unhealthy" {
			return false
		}
	}
	return true
}
