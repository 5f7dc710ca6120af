package rollout

import (
	"context"
)

// resumeCanary goes on with a canary an interrupted apply left, from the
// step its split had reached, with the same containers; counts start again.
func (d *Deployer) resumeCanary(ctx context.Context, spec Spec, before Status, route []byte, dec Decision) (Result, error) {
	d.log("resuming a canary", "revision", dec.Revision, "step", dec.FirstStep+1, "why", dec.String())
	return d.runCanary(ctx, spec, canaryState{
		policy: *dec.Policy, stable: runningOf(before, before.Revision), canary: containersOf(before, dec.Revision),
		baseline: before.Baseline, stableRev: before.Revision, canaryRev: dec.Revision, stableDigest: before.Digest,
		firstStep: dec.FirstStep, continued: dec.Continue, route: route, before: before, resumed: true,
	})
}

// abortInterrupted removes a canary an interrupted apply left, every user
// back on stable first, and fails: on_interrupt = "abort" asks that an
// interrupted canary is never promoted without a fresh run.
func (d *Deployer) abortInterrupted(ctx context.Context, spec Spec, before Status, route []byte, dec Decision) error {
	remove := append(containersOf(before, dec.Revision), before.Baseline...)
	if _, err := d.restoreStable(ctx, spec, runningOf(before, before.Revision), route, remove); err != nil {
		return err // a LeftoverError says users are on stable; the next apply removes the rest
	}
	if err := removeJudgments(ctx, d.Host, spec.Environment, spec.Service, func(int, int) bool { return true }); err != nil {
		d.log("removing the interrupted canary's kept analysis", "error", err.Error())
	}
	return &InterruptedCanaryError{Revision: dec.Revision, Weight: before.Canary.Weight, StableRevision: before.Revision}
}
