package rollout

import (
	"fmt"
	"time"

	"github.com/releasekit/terraform-provider-release/internal/analysis"
)

// UnhealthyError says new containers never became healthy; traffic was not moved.
type UnhealthyError struct {
	Container string
	Reason    string
	Logs      string
	// Leftover is set when the containers started for the switch could not
	// all be removed (or, for a rollback, stopped again).
	Leftover error
}

func (e *UnhealthyError) Error() string {
	return fmt.Sprintf("container %s did not become healthy: %s", e.Container, e.Reason)
}

// PlanChangedError says the host changed since the plan: the rollout the
// plan showed is no longer what would happen, so nothing was done.
type PlanChangedError struct {
	Planned, Now string
}

func (e *PlanChangedError) Error() string {
	return fmt.Sprintf("the plan said %q, but the host now leads to %q", e.Planned, e.Now)
}

// BlockedError says the rollout cannot go on safely; Reason says what to do.
type BlockedError struct{ Reason string }

func (e *BlockedError) Error() string { return e.Reason }

// switchError says the route to a new revision could not be written; traffic did not move.
type switchError struct{ err error }

func (e *switchError) Error() string { return e.err.Error() }
func (e *switchError) Unwrap() error { return e.err }

// CanaryAbortedError says the analysis stopped a canary. Every user is back
// on the stable revision and the canary and baseline containers are gone.
type CanaryAbortedError struct {
	Revision       int
	StableRevision int
	Step, Steps    int
	Weight         int
	// Why says in a sentence what stopped it.
	Why string
	// Underpowered is set when no check failed but the step's test could
	// not have caught the policy's must_catch: RequestsNeeded more canary
	// requests (about) would have given it the power.
	Underpowered   bool
	RequestsNeeded int
	// Last is the analysis that decided.
	Last analysis.Result
	// Report holds every analysis, as Markdown.
	Report string
	// RestoredIn is how long it took from the decision until every user was
	// back on stable: the route rewritten and the router reloaded.
	RestoredIn time.Duration
	// Leftover is set when the canary's containers could not all be removed.
	Leftover *LeftoverError
}

func (e *CanaryAbortedError) Error() string {
	return fmt.Sprintf("the canary of revision %d was aborted at step %d of %d (%d%%): %s", e.Revision, e.Step, e.Steps, e.Weight, e.Why)
}

// CanaryMetricsError says a canary could not start because its metrics
// cannot be read. No traffic reached it and its containers were removed.
type CanaryMetricsError struct {
	Err error
	// Leftover is set when the canary's containers could not all be removed.
	Leftover *LeftoverError
}

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

// LeftoverError says every user is back on stable but containers that no
// longer get traffic could not all be removed; the next apply removes them.
type LeftoverError struct{ Err error }

func (e *LeftoverError) Error() string {
	return "every user is back on the stable revision, but containers that no longer get traffic could not all be removed: " + e.Err.Error()
}
func (e *LeftoverError) Unwrap() error { return e.Err }

// RouterCheckError says the router's own health check did not pass for the
// new containers: the router would not send them traffic.
type RouterCheckError struct{ Err error }

func (e *RouterCheckError) Error() string {
	return "the router's own health check of the new containers did not pass: " + e.Err.Error()
}
func (e *RouterCheckError) Unwrap() error { return e.Err }
