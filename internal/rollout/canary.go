package rollout

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/releasekit/terraform-provider-release/internal/analysis"
	"github.com/releasekit/terraform-provider-release/internal/canary"
	"github.com/releasekit/terraform-provider-release/internal/docker"
	"github.com/releasekit/terraform-provider-release/internal/failpoint"
	"github.com/releasekit/terraform-provider-release/internal/naming"
)

// canaryState is a canary under way: who serves and where it stands.
type canaryState struct {
	policy                   canary.Policy
	stable, canary, baseline []docker.Container
	stableRev, canaryRev     int
	stableDigest             string
	// firstStep is where the steps start (a resumed canary skips those done).
	firstStep int
	// continued says why a canary that was not interrupted goes on (Decision.Continue).
	continued CanaryCommand
	// route is the route file as the router has it now.
	route []byte
	// before is what ran when the apply started.
	before Status
	// resumed: an earlier apply analysed this canary; its analysis goes on.
	resumed bool
	// requestLog is where the canary's route logs requests ("" for nowhere).
	requestLog string
}

// startCanary starts a new revision as a canary beside the serving one and
// takes it through the policy's steps.
func (d *Deployer) startCanary(ctx context.Context, spec Spec, before Status, route []byte, dec Decision) (Result, error) {
	healthy, healthyAfter, err := d.startServing(ctx, spec, before, dec, naming.TrackCanary)
	if err != nil {
		return Result{}, err
	}
	// An analysis kept by an earlier canary of this service is not this one's.
	if err := removeJudgments(ctx, d.Host, spec.Environment, spec.Service, func(int, int) bool { return true }); err != nil {
		d.log("removing an earlier canary's kept analysis", "error", err.Error())
	}
	res, err := d.runCanary(ctx, spec, canaryState{
		policy: *dec.Policy, stable: runningOf(before, before.Revision), canary: healthy,
		stableRev: before.Revision, canaryRev: dec.Revision, stableDigest: before.Digest,
		route: route, before: before,
	})
	res.HealthyAfter = healthyAfter
	return res, err
}

// runCanary takes a canary whose containers are healthy through the steps,
// analysing every interval, and promotes it or aborts it.
func (d *Deployer) runCanary(ctx context.Context, spec Spec, st canaryState) (Result, error) {
	cleanup := append(append([]docker.Container(nil), st.canary...), st.baseline...)
	if st.policy.Baseline && len(st.baseline) == 0 {
		baseline, err := d.startBaseline(ctx, spec, st)
		if err != nil {
			return Result{}, errors.Join(fmt.Errorf("starting the baseline of revision %d: %w", st.stableRev, err), d.removeContainers(ctx, spec, st.canary))
		}
		st.baseline = baseline
		cleanup = append(cleanup, baseline...)
		failpoint.Hit(failpoint.BaselineUp)
	}
	metrics, err := d.Metrics.Open(ctx, st.policy, canary.Target{
		Environment: spec.Environment, Service: spec.Service,
		CanaryRevision: st.canaryRev, StableRevision: st.stableRev,
		CanaryDigest: spec.Digest, StableDigest: st.stableDigest,
		Baseline: len(st.baseline) > 0,
		Interval: time.Duration(st.policy.Analysis.Interval),
	}, spec.Router)
	if err != nil {
		metricsErr := &CanaryMetricsError{Err: err}
		if rmErr := d.removeContainers(ctx, spec, cleanup); rmErr != nil {
			metricsErr.Leftover = &LeftoverError{Err: rmErr}
		}
		return Result{}, metricsErr
	}
	defer closeMetrics(ctx, metrics)
	st.requestLog = requestLogOf(metrics)

	run := &canaryRun{d: d, spec: spec, st: &st, metrics: metrics, analyzer: analysis.NewAnalyzer(st.policy.Judgment()), cleanup: cleanup}
	if st.resumed {
		run.resumeAnalysis(ctx)
	}
	// A command left by an action is for this canary only; a canary held at
	// a manual step keeps the marker that says so.
	defer func() {
		if run.heldAt == 0 {
			d.clearCommand(ctx, spec)
		}
	}()
	if st.continued == CommandPromote {
		run.promotedByAction = st.firstStep
	}
	if st.firstStep == 0 {
		// The router checks the canary and baseline with no traffic first:
		// nobody is sent to a container the router itself would not pass.
		if why := run.routerCheck(ctx); why != "" {
			return Result{CanaryReport: run.report}, run.abort(ctx, 0, why, analysis.Result{})
		}
	}
	for i := st.firstStep; i < len(st.policy.Steps); i++ {
		if st.policy.Steps[i].Manual {
			return run.holdAtManualStep(ctx, i)
		}
		err := run.step(ctx, i)
		if errors.Is(err, errPromoteNow) {
			d.log("promote action: the steps left are skipped", "step", i+1, "revision", st.canaryRev)
			run.promotedByAction = i + 1
			break
		}
		if err != nil {
			return Result{CanaryReport: run.report}, err
		}
	}
	// Looks judge counts; before everyone goes to the canary, see that its
	// containers still run and are healthy.
	why := d.canaryGone(ctx, st.canary)
	if why == "" {
		if err := d.waitRouterReady(ctx, spec, share{st.canary, naming.TrackCanary, 0}); err != nil {
			why = "the router does not report it UP: " + err.Error()
		}
	}
	if why != "" {
		last := len(st.policy.Steps) - 1
		return Result{CanaryReport: run.report}, run.abort(ctx, last, why+"; a canary that no longer serves is never promoted", analysis.Result{})
	}
	report := analysis.Report(fmt.Sprintf("Canary of %s/%s revision %d: promoted", spec.Environment, spec.Service, st.canaryRev), run.results)
	if run.promotedByAction > 0 {
		report += fmt.Sprintf("\nPromoted by action at step %d of %d.\n", run.promotedByAction, len(st.policy.Steps))
	}
	d.log("canary passed every step; promoting", "revision", st.canaryRev)
	// Everyone goes to the canary at once, without a reload; stable and
	// baseline are drained before the route drops them and they stop.
	drained, names, err := d.drain(ctx, spec, st.route, share{st.canary, naming.TrackCanary, 100},
		share{st.stable, naming.TrackStable, 0}, share{st.baseline, naming.TrackBaseline, 0})
	if err == nil {
		st.route = drained
		err = d.waitDrained(ctx, spec, names)
	}
	if err != nil {
		last := len(st.policy.Steps) - 1
		return Result{CanaryReport: run.report}, run.abort(ctx, last, "the promotion did not reach the router: "+err.Error(), analysis.Result{})
	}
	res, err := d.promote(ctx, spec, st.before, st.canary, st.canaryRev, st.route, append(st.before.Containers, st.baseline...), false)
	res.CanaryReport = report
	if err == nil {
		run.forgetAnalysis(ctx)
	}
	return res, err
}

// forgetAnalysis removes the kept analysis of a canary that was decided.
func (r *canaryRun) forgetAnalysis(ctx context.Context) {
	if err := removeJudgments(context.WithoutCancel(ctx), r.d.Host, r.spec.Environment, r.spec.Service, func(int, int) bool { return true }); err != nil {
		r.d.log("removing the canary's kept analysis", "error", err.Error())
	}
}

// canaryRun is one canary's steps in progress.
type canaryRun struct {
	d        *Deployer
	spec     Spec
	st       *canaryState
	metrics  CanaryMetrics
	analyzer *analysis.Analyzer
	cleanup  []docker.Container
	begun    bool
	begunAt  time.Time
	// weightSeconds and restSeconds add up, look by look, the canary's
	// weight (and the rest's) times time: the traffic the power projects.
	weightSeconds, restSeconds float64
	failures                   int
	// requests is the canary's request count at the last look.
	requests int
	results  []analysis.Result
	report   string
	// held: a hold command keeps the canary at its step until another command.
	held bool
	// promotedByAction is the step a promote command ended the steps at.
	promotedByAction int
	// heldAt is the manual step (1-based) the apply ended at, 0 if none.
	heldAt int
}

// holdAtManualStep gives the canary a manual step's weight and ends the
// apply there: the marker it leaves tells the next apply to continue, and
// the plan to say so.
func (r *canaryRun) holdAtManualStep(ctx context.Context, i int) (Result, error) {
	d, st := r.d, r.st
	step := st.policy.Steps[i]
	name, cfg, err := canaryRoute(r.spec, *st, step.Weight)
	if err == nil && string(cfg) != string(st.route) {
		d.log("canary step (manual)", "step", i+1, "weight", step.Weight, "revision", st.canaryRev)
		err = d.applyRoute(ctx, r.spec.Router.ContainerID, name, cfg, st.route)
	}
	if err != nil {
		return Result{CanaryReport: r.report}, r.abort(ctx, i, "the router refused the split: "+err.Error(), analysis.Result{})
	}
	st.route = cfg
	failpoint.Hit(failpoint.StepRouted)
	image := st.canary[0].Labels[naming.LabelImage]
	if err := leaveCommand(ctx, d.Host, r.spec.Environment, r.spec.Service, st.canaryRev, image, CommandHeld); err != nil {
		return Result{CanaryReport: r.report}, r.abort(ctx, i, "the hold at the manual step could not be recorded: "+err.Error(), analysis.Result{})
	}
	r.heldAt = i + 1
	status, _, err := d.observe(ctx, r.spec)
	if err != nil {
		return Result{}, err
	}
	report := analysis.Report(fmt.Sprintf("Canary of %s/%s revision %d: held at step %d of %d (%d%%, manual)", r.spec.Environment, r.spec.Service, st.canaryRev, i+1, len(st.policy.Steps), step.Weight), r.results)
	d.log("canary held at a manual step; the next apply continues it", "step", i+1, "weight", step.Weight, "revision", st.canaryRev)
	return Result{Status: status, CanaryReport: report, Held: &HeldCanary{Revision: st.canaryRev, StableRevision: st.stableRev, Step: i + 1, Steps: len(st.policy.Steps), Weight: step.Weight}}, nil
}

// errPromoteNow ends a canary's steps: a promote command was left for it.
var errPromoteNow = errors.New("promote command")

// AbortedByAction is the reason a canary aborted by the abort action gives.
const AbortedByAction = "aborted by action"

// obey reads the command left for the canary: a non-nil error ends the step
// (an abort, or errPromoteNow); a hold sets held until another command.
func (r *canaryRun) obey(ctx context.Context, step int) error {
	switch r.d.command(ctx, r.spec, r.st.canaryRev) {
	case CommandAbort:
		r.d.log("abort action: every user goes back to stable", "step", step+1, "revision", r.st.canaryRev)
		return r.abort(ctx, step, AbortedByAction, analysis.Result{})
	case CommandPromote:
		return errPromoteNow
	case CommandHold:
		if !r.held {
			r.d.log("hold action: the canary stays at its weight", "step", step+1, "revision", r.st.canaryRev)
		}
		r.held = true
	default:
		r.held = false
	}
	return nil
}

// step sets step i's weight, holds it for its pause and judges it every
// interval. It returns a CanaryAbortedError when the canary must go.
func (r *canaryRun) step(ctx context.Context, i int) error {
	d, st, policy := r.d, r.st, r.st.policy
	step := policy.Steps[i]
	name, cfg, err := canaryRoute(r.spec, *st, step.Weight)
	if err == nil && string(cfg) != string(st.route) {
		d.log("canary step", "step", i+1, "weight", step.Weight, "revision", st.canaryRev)
		err = d.applyRoute(ctx, r.spec.Router.ContainerID, name, cfg, st.route)
	}
	if err != nil {
		return r.abort(ctx, i, "the router refused the split: "+err.Error(), analysis.Result{})
	}
	st.route = cfg
	failpoint.Hit(failpoint.StepRouted)
	if !r.begun {
		if err := r.metrics.Begin(ctx); err != nil {
			return r.abort(ctx, i, "its metrics cannot be read: "+err.Error(), analysis.Result{})
		}
		r.begun, r.begunAt = true, d.Clock.Now()
	}

	interval := time.Duration(policy.Analysis.Interval)
	stepStart := d.Clock.Now()
	planned := int(time.Duration(step.Pause) / interval)
	last := analysis.Inconclusive
	for look := 1; r.held || look <= planned+policy.Analysis.InconclusiveLimit; look++ {
		if !r.held && look > planned && last == analysis.Pass {
			break
		}
		if err := d.Clock.Sleep(ctx, stepStart.Add(time.Duration(look)*interval).Sub(d.Clock.Now())); err != nil {
			// Cancelled (Ctrl-C or the timeout): never leave a half-judged canary serving.
			why := "the apply was cancelled (" + err.Error() + ")"
			if r.held {
				why += " while the canary was held by the hold action"
			}
			return r.abort(ctx, i, why, analysis.Result{})
		}
		if err := r.obey(ctx, i); err != nil {
			return err
		}
		r.exposed(i)
		res := r.look(ctx, policy.Exposure(i, time.Duration(look)*interval))
		res.Step = i + 1
		r.results = append(r.results, res)
		last = res.Verdict
		d.log("canary analysis", "step", i+1, "look", res.Look, "verdict", res.Verdict.String())
		failpoint.Hit(failpoint.StepJudged)
		if res.Verdict == analysis.Fail {
			r.failures++
			if r.failures >= policy.Analysis.FailureLimit {
				return r.abort(ctx, i, fmt.Sprintf("%d failed analyses (failure_limit %d): %s", r.failures, policy.Analysis.FailureLimit, checksWith(res, analysis.Fail)), res)
			}
		}
	}
	if last != analysis.Pass {
		lastRes := r.results[len(r.results)-1]
		why := fmt.Sprintf("still inconclusive after %d more analyses (inconclusive_limit): %s; a canary that cannot be judged is never promoted", policy.Analysis.InconclusiveLimit, checksWith(lastRes, analysis.Inconclusive))
		if last == analysis.Fail {
			why = "the last analysis of the step failed: " + checksWith(lastRes, analysis.Fail)
		}
		return r.abort(ctx, i, why, lastRes)
	}
	if err := r.checkPower(ctx, i, stepStart, planned); err != nil {
		return err
	}
	// What is left of the pause after the last look.
	if rest := stepStart.Add(time.Duration(step.Pause)).Sub(d.Clock.Now()); rest > 0 {
		if err := d.Clock.Sleep(ctx, rest); err != nil {
			return r.abort(ctx, i, "the apply was cancelled ("+err.Error()+")", analysis.Result{})
		}
	}
	return nil
}

// routerCheck adds the canary and baseline to the route with no traffic and
// waits until the router reports them UP; it says why not, or "".
func (r *canaryRun) routerCheck(ctx context.Context) string {
	d, st := r.d, r.st
	incoming := []share{{st.canary, naming.TrackCanary, 0}, {st.baseline, naming.TrackBaseline, 0}}
	// The split of every step, at 0%: sticky like the steps, so that each
	// step after it only changes weights, which the router applies without
	// a reload.
	name, cfg, err := canaryRoute(r.spec, *st, 0)
	if err == nil {
		err = d.applyRoute(ctx, r.spec.Router.ContainerID, name, cfg, st.route)
	}
	if err != nil {
		return "the router refused the route that checks it: " + err.Error()
	}
	st.route = cfg
	if err := d.waitRouterReady(ctx, r.spec, incoming...); err != nil {
		return "the router's own health check did not pass: " + err.Error()
	}
	return ""
}

// look takes one analysis at planned exposure t; metrics that cannot be
// read make it inconclusive. The analysis so far is kept with the canary.
func (r *canaryRun) look(ctx context.Context, t float64) analysis.Result {
	sample, err := r.metrics.Sample(ctx)
	if err != nil {
		return analysis.Result{Verdict: analysis.Inconclusive, Progress: t, Checks: []analysis.Check{{Name: "metrics", Canary: "no data", Verdict: analysis.Inconclusive, Reason: err.Error()}}}
	}
	res := r.analyzer.Judge(sample, t)
	image := r.st.canary[0].Labels[naming.LabelImage]
	if err := saveJudgment(ctx, r.d.Host, r.spec.Environment, r.spec.Service, r.st.canaryRev, r.analyzer.Looks(), image, r.analyzer.State()); err != nil {
		r.d.log("the canary's analysis could not be kept; a resumed canary would start a new one", "error", err.Error())
	}
	res.Checks = append(res.Checks, countsCheck(sample)...)
	// Counts are cumulative: a canary that stopped answering (hung, cut
	// off) would pass again and again on what it did before.
	if sample.Canary.Requests <= r.requests {
		res.Checks = append(res.Checks, analysis.Check{Name: "traffic", Canary: fmt.Sprintf("%d requests", sample.Canary.Requests),
			Verdict: analysis.Inconclusive, Reason: "the canary got no new requests since the last analysis"})
		if res.Verdict == analysis.Pass {
			res.Verdict = analysis.Inconclusive
		}
	}
	r.requests = sample.Canary.Requests
	return res
}

// canaryGone says why the canary's containers cannot take everyone, or "".
func (d *Deployer) canaryGone(ctx context.Context, cs []docker.Container) string {
	for _, c := range cs {
		now, err := d.Host.Inspect(ctx, c.ID)
		switch {
		case err != nil:
			return fmt.Sprintf("container %s cannot be read: %v", c.Name, err)
		case !now.Running():
			return fmt.Sprintf("container %s is %s", c.Name, now.State)
		case now.Health == "unhealthy":
			return fmt.Sprintf("container %s is unhealthy: %s", c.Name, lastOutput(now))
		}
	}
	return ""
}

// abort puts every user back on stable, removes the canary and baseline,
// and says why in a CanaryAbortedError with the report.
func (r *canaryRun) abort(ctx context.Context, step int, why string, last analysis.Result) error {
	st, policy := r.st, r.st.policy
	r.report = analysis.Report(fmt.Sprintf("Canary of %s/%s revision %d: aborted", r.spec.Environment, r.spec.Service, st.canaryRev), r.results)
	restored, err := r.d.restoreStable(ctx, r.spec, st.stable, st.route, r.cleanup)
	var leftover *LeftoverError
	if err != nil && !errors.As(err, &leftover) {
		return fmt.Errorf("aborting the canary (%s): %w", why, err)
	}
	r.report += fmt.Sprintf("\nAborted at step %d of %d (%d%%): %s. Every user was back on revision %d %s after the decision.\n",
		step+1, len(policy.Steps), policy.Steps[step].Weight, why, st.stableRev, restored.Round(time.Millisecond))
	r.forgetAnalysis(ctx)
	return &CanaryAbortedError{
		Revision: st.canaryRev, StableRevision: st.stableRev,
		Step: step + 1, Steps: len(policy.Steps), Weight: policy.Steps[step].Weight,
		Why: why, Last: last, Report: r.report, RestoredIn: restored, Leftover: leftover,
	}
}

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

// restoreStable puts every user back on the stable containers, then removes
// the canary and baseline containers, which finish their requests first.
// It returns how long the route took to reach the router.
func (d *Deployer) restoreStable(ctx context.Context, spec Spec, stable []docker.Container, route []byte, remove []docker.Container) (time.Duration, error) {
	ctx = context.WithoutCancel(ctx)
	start := d.Clock.Now()
	name, cfg, err := routeFor(spec, stable)
	if err != nil {
		return 0, err
	}
	// First as a change of weights (no reload: at once), draining the
	// canary and baseline; then the route without them.
	live, drained, err := d.drain(ctx, spec, route, share{stable, naming.TrackStable, 100}, byTrack(remove)...)
	restored := d.Clock.Now().Sub(start)
	if err != nil {
		d.log("draining the canary failed; routing back with a reload", "error", err.Error())
	} else if err := d.waitDrained(ctx, spec, drained); err != nil {
		d.log("waiting for the canary's sessions", "error", err.Error())
	}
	if string(cfg) != string(live) {
		if err := d.applyRoute(ctx, spec.Router.ContainerID, name, cfg, live); err != nil {
			return 0, fmt.Errorf("routing every user back to the stable revision: %w", err)
		}
		if string(live) == string(route) {
			restored = d.Clock.Now().Sub(start)
		}
	}
	d.log("every user back on stable", "after", restored.String())
	failpoint.Hit(failpoint.AbortRouted)
	if err := d.removeContainers(ctx, spec, remove); err != nil {
		return restored, &LeftoverError{Err: err}
	}
	return restored, nil
}
