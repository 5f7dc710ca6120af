//go:build sim

// Package simulation measures the canary judgment the way users get it:
// thousands of canaries per cell, each released through the real rollout
// loop (rollout.Deployer: its steps, looks, aborts and promotion) on the
// in-memory host, router and clock of rollouttest, with traffic drawn from
// a scenario. Run with
//
//	go test -tags sim -v -timeout 60m ./internal/analysis/...
//
// (make sim). RELEASE_SIM_REPORT_ONLY=1 reports the figures without failing
// on missed targets; RELEASE_SIM_SCALE=0.1 runs a tenth of the runs (a
// quick look, not the suite).
package simulation

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/releasekit/terraform-provider-release/internal/analysis"
	"github.com/releasekit/terraform-provider-release/internal/canary"
	"github.com/releasekit/terraform-provider-release/internal/rollout"
	"github.com/releasekit/terraform-provider-release/internal/rollout/rollouttest"
)

// Kind is how a simulated canary ended.
type Kind int

const (
	Promoted Kind = iota
	// Failed: aborted on a failed analysis (a check said FAIL).
	Failed
	// Underpowered: aborted with CanaryAbortedError.Underpowered.
	Underpowered
	// Inconclusive: aborted because the analyses could not decide.
	Inconclusive
	// Broken: the release ended with any other error (the harness's fault).
	Broken
	kinds
)

var kindNames = [kinds]string{"promoted", "failed", "underpowered", "inconclusive", "broken"}

func (k Kind) String() string { return kindNames[k] }

// Outcome is one simulated canary.
type Outcome struct {
	Kind Kind
	// Canary and Comparison are the requests each side had in the sample
	// the decision was taken on (the last look); Looks how many looks there were.
	Canary, Comparison int
	Looks              int
	// Named is set when a failed check of the deciding look names Scenario's first new error type.
	Named bool
	// Served and Counted are the canary's requests served and counted by the
	// last sample, and its errors (the collector's losses).
	Served, Counted, ServedErrors, CountedErrors int
	RequestsNeeded                               int
	Err                                          error
}

// release runs one canary of sc under p through the deployer: the stable
// revision is released first (a hard switch), then the canary.
func release(ctx context.Context, p canary.Policy, sc rollouttest.Scenario, seed uint64) Outcome {
	st, err := rollouttest.WithStable(ctx)
	if err != nil {
		return Outcome{Kind: Broken, Err: err}
	}
	tr := rollouttest.NewTraffic(sc, seed, st.Routes, st.Clock)
	st.Deployer.Metrics = tr
	spec := rollouttest.Spec(rollouttest.CanaryDigest)
	spec.Canary = &p
	res, err := st.Deployer.Deploy(ctx, spec)
	last := tr.LastSample()
	out := Outcome{Canary: last.Canary.Requests, Comparison: last.Baseline.Requests, Looks: tr.Samples(),
		Counted: last.Canary.Requests, CountedErrors: last.Canary.Errors}
	served, _ := tr.Served()
	out.Served, out.ServedErrors = served.Requests, served.Errors
	var aborted *rollout.CanaryAbortedError
	switch {
	case err == nil && res.Status.Digest == rollouttest.CanaryDigest:
		out.Kind = Promoted
	case errors.As(err, &aborted) && !aborted.Underpowered && len(aborted.Last.Checks) == 0:
		// Aborted for no analysis (the router, the metrics): the harness's fault.
		out.Kind, out.Err = Broken, err
	case errors.As(err, &aborted) && aborted.Underpowered:
		out.Kind, out.RequestsNeeded = Underpowered, aborted.RequestsNeeded
	case errors.As(err, &aborted) && aborted.Last.Verdict == analysis.Fail:
		out.Kind = Failed
		if len(sc.NewTypes) > 0 {
			for _, c := range aborted.Last.Checks {
				if c.Verdict == analysis.Fail && strings.Contains(c.Name+" "+c.Reason, sc.NewTypes[0].Name) {
					out.Named = true
				}
			}
		}
	case errors.As(err, &aborted):
		out.Kind = Inconclusive
	default:
		out.Kind, out.Err = Broken, fmt.Errorf("the release ended with %v (digest %s)", err, res.Status.Digest)
	}
	return out
}
