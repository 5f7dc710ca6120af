// Package failpoint lets the fault-injection tests stop an apply at an
// exact step of a rollout, as a killed pipeline would: when the variable
// RELEASE_FAILPOINT names a point, reaching it kills Terraform (the
// provider's parent) and the provider with SIGKILL. Unset, a point costs
// one string comparison; nothing else reads the variable.
package failpoint

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Env names the point to stop at, optionally with the hit to stop at:
// "rollout/step-routed" stops at the first hit, "rollout/step-routed#3" at the third.
const Env = "RELEASE_FAILPOINT"

// The step boundaries a rollout, a router change and a migration honour.
// Each is hit after the step it names is done and before the next begins.
const (
	// Hard switch, rollback and repair.
	Created  = "rollout/created"  // new containers created, none started
	Started  = "rollout/started"  // containers started, not yet healthy
	Healthy  = "rollout/healthy"  // every container healthy, route untouched
	Switched = "rollout/switched" // the route to the new revision is loaded
	Retiring = "rollout/retiring" // some earlier containers stopped, not all
	// Canary.
	BaselineUp    = "rollout/baseline-up"    // the baseline is healthy, no traffic split yet
	StepRouted    = "rollout/step-routed"    // a step's split is loaded, not yet judged
	StepJudged    = "rollout/step-judged"    // a look was judged, the step goes on
	AbortRouted   = "rollout/abort-routed"   // every user back on stable, canary still present
	AbortRemoving = "rollout/abort-removing" // the canary's containers stopped, not removed
	Promoted      = "rollout/promoted"       // the canary has all traffic, stable not retired
	// Router.
	RouteWritten = "router/route-written" // the new route file is in place, not loaded
	ReloadSent   = "router/reload-sent"   // the reload signal was sent, not confirmed
	// Migration.
	MigrationRan     = "migration/ran"      // the command finished, its record not written
	MigrationDownRan = "migration/down-ran" // the down finished, the up's record not removed
)

// All lists every point, for the suite that visits each.
var All = []string{
	Created, Started, Healthy, Switched, Retiring,
	BaselineUp, StepRouted, StepJudged, AbortRouted, AbortRemoving, Promoted,
	RouteWritten, ReloadSent, MigrationRan, MigrationDownRan,
}

var (
	mu   sync.Mutex
	hits = map[string]int{}
)

// Armed says whether a failpoint is set for this process: a step that can
// be taken in one go or in two then takes two, so the point between them
// can be stopped at.
func Armed() bool { return os.Getenv(Env) != "" }

// Hit stops the apply here when RELEASE_FAILPOINT names this point (and hit).
func Hit(name string) {
	want := os.Getenv(Env)
	if want == "" {
		return
	}
	point, nth := want, 1
	if p, n, ok := strings.Cut(want, "#"); ok {
		point = p
		if v, err := strconv.Atoi(n); err == nil && v > 0 {
			nth = v
		}
	}
	if point != name {
		return
	}
	mu.Lock()
	hits[name]++
	n := hits[name]
	mu.Unlock()
	if n != nth {
		return
	}
	// Terraform first, as a pipeline's kill would take it, then ourselves.
	// Only a parent that is Terraform: a provider served in-process by a
	// test has the test runner's shell as its parent.
	if parentIsTerraform() {
		_ = syscall.Kill(os.Getppid(), syscall.SIGKILL)
	}
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // the signal is on its way
}

func parentIsTerraform() bool {
	comm, err := os.ReadFile("/proc/" + strconv.Itoa(os.Getppid()) + "/comm")
	return err == nil && strings.HasPrefix(strings.TrimSpace(string(comm)), "terraform")
}
