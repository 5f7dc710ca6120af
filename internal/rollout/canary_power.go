package rollout

import (
	"context"
	"fmt"
	"time"

	"github.com/releasekit/terraform-provider-release/internal/analysis"
)

// resumeAnalysis continues the analysis an interrupted apply kept: the same
// test, with what it spent, so an interrupted canary never gets a second budget.
func (r *canaryRun) resumeAnalysis(ctx context.Context) {
	state, err := loadJudgment(ctx, r.d.Host, r.spec.Environment, r.spec.Service, r.st.canaryRev)
	if err == nil && state == nil {
		r.d.log("no analysis was kept; the resumed canary starts a new one")
		return
	}
	if err == nil {
		if err = r.analyzer.Resume(state); err == nil {
			r.d.log("the resumed canary continues its analysis", "looks", r.analyzer.Looks())
			return
		}
	}
	r.d.log("the kept analysis cannot be used; the resumed canary starts a new one", "error", err.Error())
	r.analyzer = analysis.NewAnalyzer(r.st.policy.Judgment())
	// The new analysis numbers its looks from 1: the old markers go, or one
	// with a higher look would still read as the newest after the next kill.
	r.forgetAnalysis(ctx)
}

// checkPower asks, at the end of step i, whether the 5xx comparison can
// catch must_catch by the end of the schedule: projected at the traffic
// seen so far before the last step (shown in the report), as it is after
// the last. Below RequiredPower there, the policy's on_underpowered
// decides: abort (a canary that could not have failed is never promoted on
// that basis), extend the last step by up to inconclusive_limit intervals,
// or promote with a warning in the report. A promote action skips it.
func (r *canaryRun) checkPower(ctx context.Context, i int, stepStart time.Time, planned int) error {
	d, policy := r.d, r.st.policy
	if r.promotedByAction > 0 || len(r.results) == 0 {
		return nil
	}
	pw := r.analyzer.Power(r.projection(i))
	r.notePower(pw, i)
	if !pw.Underpowered() || i < len(policy.Steps)-1 {
		// Before the last step the power is a projection from a few hundred
		// requests: the report shows it, the last step decides.
		return nil
	}
	action := policy.UnderpoweredAction()
	d.log("canary underpowered", "step", i+1, "power", fmt.Sprintf("%.2f", pw.Power), "needed", pw.Needed, "on_underpowered", action)
	if action == "extend" {
		interval := time.Duration(policy.Analysis.Interval)
		for extra := 1; extra <= policy.Analysis.InconclusiveLimit && pw.Underpowered(); extra++ {
			look := planned + extra
			if err := d.Clock.Sleep(ctx, stepStart.Add(time.Duration(look)*interval).Sub(d.Clock.Now())); err != nil {
				return r.abort(ctx, i, "the apply was cancelled ("+err.Error()+")", analysis.Result{})
			}
			r.exposed(i)
			res := r.look(ctx, policy.Exposure(i, time.Duration(look)*interval))
			res.Step = i + 1
			r.results = append(r.results, res)
			d.log("canary analysis (extended: underpowered)", "step", i+1, "look", res.Look, "verdict", res.Verdict.String())
			if res.Verdict == analysis.Fail {
				return r.abort(ctx, i, "an extended analysis failed: "+checksWith(res, analysis.Fail), res)
			}
			pw = r.analyzer.Power(r.projection(i))
			r.notePower(pw, i)
		}
		if !pw.Underpowered() {
			return nil
		}
	}
	if action == "promote" {
		d.log("on_underpowered = promote: the canary goes on although its test could not have caught must_catch", "step", i+1)
		return nil
	}
	last := r.results[len(r.results)-1]
	why := fmt.Sprintf("underpowered: %s by the end of the schedule (on_underpowered = %q); a canary its test could not have failed is never promoted", pw, action)
	err := r.abort(ctx, i, why, last)
	if aborted, ok := err.(*CanaryAbortedError); ok {
		aborted.Underpowered, aborted.RequestsNeeded = true, pw.Needed
	}
	return err
}

// notePower adds the power to the step's last analysis, for the report.
func (r *canaryRun) notePower(pw analysis.Power, step int) {
	c := analysis.Check{Name: "power", Canary: fmt.Sprintf("%.0f%%", 100*pw.Power), Baseline: fmt.Sprintf("must catch %.2f%% vs %.2f%%", 100*pw.MustCatch, 100*pw.BaseRate),
		Samples: "to the end of the schedule", Verdict: analysis.Pass, Reason: pw.String()}
	if pw.Underpowered() {
		c.Verdict = analysis.Inconclusive
	}
	if step < len(r.st.policy.Steps)-1 {
		c.Samples = "to the end of the schedule, the steps left at the traffic seen"
	}
	last := &r.results[len(r.results)-1]
	last.Checks = append(last.Checks, c)
}

// projection is the exposure the steps after step i would add at the
// traffic seen so far: the canary's requests per percent of weight and
// second (and, without a baseline, stable's per percent of the rest), times
// the weights and pauses of the steps left.
func (r *canaryRun) projection(i int) []analysis.Exposure {
	policy := r.st.policy
	canary, comparison, _ := r.analyzer.Totals()
	if r.weightSeconds <= 0 || canary <= 0 {
		return nil
	}
	perCanary := float64(canary) / r.weightSeconds
	perOther := perCanary
	if !policy.Baseline && r.restSeconds > 0 {
		perOther = float64(comparison) / r.restSeconds
	}
	interval := time.Duration(policy.Analysis.Interval)
	var out []analysis.Exposure
	for s := i + 1; s < len(policy.Steps); s++ {
		step := policy.Steps[s]
		if step.Manual {
			continue
		}
		w := float64(step.Weight)
		c := perCanary * w * interval.Seconds()
		cmp := c
		if !policy.Baseline {
			cmp = perOther * (100 - w) * interval.Seconds()
		}
		for k := 1; k <= int(time.Duration(step.Pause)/interval); k++ {
			out = append(out, analysis.Exposure{T: policy.Exposure(s, time.Duration(k)*interval), Canary: c, Comparison: cmp})
		}
	}
	return out
}

// exposed adds the weight × time of a look's interval at step i.
func (r *canaryRun) exposed(i int) {
	policy := r.st.policy
	w := float64(policy.Steps[i].Weight)
	secs := time.Duration(policy.Analysis.Interval).Seconds()
	r.weightSeconds += w * secs
	r.restSeconds += (100 - w) * secs
}
