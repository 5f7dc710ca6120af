package provider

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/releasekit/terraform-provider-release/internal/naming"
	"github.com/releasekit/terraform-provider-release/internal/router"
)

// canaryShare is the canary's part of the route's weights, from the route
// file; -1 when the route cannot be read.
func (f *canaryFixture) canaryShare() int {
	files, err := f.engine.ReadDir(context.Background(), router.ContainerName(f.router), router.ConfigDir)
	if err != nil {
		return -1
	}
	canaryWeight, total := 0, 0
	for _, s := range router.ParseRouteServers(files[router.RouteFileName(f.env, "web")]) {
		total += s.Weight
		if n, ok := naming.ParseServerName(s.Name); ok && n.Track == naming.TrackCanary {
			canaryWeight += s.Weight
		}
	}
	if total == 0 {
		return 0
	}
	return (100*canaryWeight + total/2) / total // as the provider rounds it
}

func (f *canaryFixture) waitForCanaryShare(t *testing.T, a *tfProc, share int) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if f.canaryShare() == share {
			return
		}
	}
	t.Fatalf("the canary never got %d%% of traffic; the apply says:\n%s", share, a.out.String())
}

// actionsWorkspace is a second working directory, as another pipeline job
// has, that declares the canary actions for the fixture's environment.
func (f *canaryFixture) actionsWorkspace(t *testing.T) *tfWorkspace {
	var b strings.Builder
	for _, kind := range []string{"abort", "promote", "hold"} {
		fmt.Fprintf(&b, `
action "release_canary_%s" "web" {
  config {
    environment = %q
    service     = "web"
  }
}
`, kind, f.env)
	}
	return newTFWorkspace(t, b.String())
}

// allServe checks that n requests in a row are answered by version.
func (f *canaryFixture) allServe(version string, n int) error {
	for i := 0; i < n; i++ {
		resp, err := http.Get(f.url())
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), "version="+version+" ") {
			return fmt.Errorf("request %d of %d was answered by %q, want version %s", i+1, n, strings.TrimSpace(string(body)), version)
		}
	}
	return nil
}

// canaryInFlight releases v1, then starts the canary of v2 in a background
// apply under load and returns once the canary has its first step's 20%,
// with a second working directory (another job) that declares the actions.
func canaryInFlight(t *testing.T) (*canaryFixture, *tfWorkspace, *tfWorkspace, *tfProc) {
	f := newCanaryFixture(t)
	w := newTFWorkspace(t, f.config(f.v1, ""))
	w.destroyOnCleanup()
	w.mustRun("apply", "-auto-approve")
	ops := f.actionsWorkspace(t)
	f.startLoad()
	w.write(f.config(f.v2, ""))
	running := w.startTF(nil, "apply", "-auto-approve")
	f.waitForCanaryShare(t, running, 20)
	return f, w, ops, running
}

// The abort action, invoked from a second working directory while another
// apply runs a canary, puts every user back on stable at the canary's next
// analysis; the running apply fails saying the action aborted it.
func TestAccCanaryActions_abortFromAnotherJob(t *testing.T) {
	f, w, ops, running := canaryInFlight(t)

	invoked := time.Now()
	out := ops.mustRun("apply", "-invoke=action.release_canary_abort.web", "-auto-approve")
	t.Logf("the abort action took %s:\n%s", time.Since(invoked).Round(time.Millisecond), out)
	if !strings.Contains(out, "every user of "+f.env+"/web is on revision 1") {
		t.Errorf("the action does not say every user is back on revision 1:\n%s", out)
	}
	// The action returns once the running apply carried the command out.
	if err := f.allServe("1.0.0", 30); err != nil {
		t.Errorf("after the abort action: %v", err)
	}
	if out, code := running.wait(time.Minute); code == 0 || !strings.Contains(out, "aborted by action") {
		t.Errorf("the running apply exited %d, want a failure saying %q:\n%s", code, "aborted by action", out)
	}
	if err := f.stopCanaryLoad("abort action", "", "1.0.0", "2.0.0"); err != nil {
		t.Error(err)
	}
	if err := f.checkOnly("1")(nil); err != nil {
		t.Error(err)
	}
	// The configuration still asks for v2: the next plan shows the canary again.
	if plan, code := w.run("plan", "-detailed-exitcode"); code != 2 || !regexp.MustCompile(`rollout\s+= .*-> "canary: 20% for 18s`).MatchString(plan) {
		t.Errorf("the plan after the abort (exit %d) does not show the canary again:\n%s", code, plan)
	}
	// Nothing to abort now: a clear error, nothing changed.
	if out, code := ops.run("apply", "-invoke=action.release_canary_abort.web", "-auto-approve"); code == 0 || !strings.Contains(out, "No Canary In Flight") {
		t.Errorf("the abort action without a canary exited %d, want No Canary In Flight:\n%s", code, out)
	}
}

// The hold action keeps a canary at its weight past its step's pause; the
// promote action then completes the rollout at once, and the running apply
// succeeds.
func TestAccCanaryActions_holdThenPromote(t *testing.T) {
	f, w, ops, running := canaryInFlight(t)
	reached := time.Now()
	ops.mustRun("apply", "-invoke=action.release_canary_hold.web", "-auto-approve")

	// The first step's pause is 18s: held, the canary is still at 20% well after it.
	time.Sleep(time.Until(reached.Add(27 * time.Second)))
	if share := f.canaryShare(); share != 20 {
		t.Fatalf("27s into a held 18s step the canary has %d%% of traffic, want 20%%; the apply says:\n%s", share, running.out.String())
	}

	out := ops.mustRun("apply", "-invoke=action.release_canary_promote.web", "-auto-approve")
	t.Logf("the promote action:\n%s", out)
	if out, code := running.wait(time.Minute); code != 0 {
		t.Fatalf("the running apply exited %d after the promote action:\n%s", code, out)
	}
	if err := f.stopCanaryLoad("hold, then promote action", "", "1.0.0", "2.0.0"); err != nil {
		t.Error(err)
	}
	if err := f.allServe("2.0.0", 20); err != nil {
		t.Error(err)
	}
	if out, code := w.run("plan", "-detailed-exitcode"); code != 0 {
		t.Errorf("the plan after the promoted canary is not empty (exit %d):\n%s", code, out)
	}
}

// A step with pause = "manual" ends the apply with the canary held at its
// weight; the plan says the next apply continues it; the promote action,
// with no apply running, leaves its command, and the next apply promotes
// at once.
func TestAccCanaryActions_manualStepThenPromote(t *testing.T) {
	f := newCanaryFixture(t)
	manual := func(digest string) string {
		return strings.Replace(f.config(digest, ""), `{ weight = 30, pause = "9s" }`, `{ weight = 30, pause = "manual" }`, 1)
	}
	w := newTFWorkspace(t, manual(f.v1))
	w.destroyOnCleanup()
	w.mustRun("apply", "-auto-approve")
	ops := f.actionsWorkspace(t)

	f.startLoad()
	w.write(manual(f.v2))
	plan := w.mustRun("plan")
	if !strings.Contains(plan, "30% held until the next apply") {
		t.Errorf("the plan does not show the manual step:\n%s", plan)
	}
	out := w.mustRun("apply", "-auto-approve")
	if !strings.Contains(out, "Canary Held At A Manual Step") || !strings.Contains(out, "held at step 2 of 3 with 30% of traffic") {
		t.Fatalf("the apply does not say the canary is held:\n%s", out)
	}
	if share := f.canaryShare(); share != 30 {
		t.Fatalf("after the apply the canary has %d%% of traffic, want 30%%", share)
	}
	plan, code := w.run("plan", "-detailed-exitcode")
	if code != 2 || !strings.Contains(plan, "is held at 30% of traffic by a manual step") || !strings.Contains(plan, "continue the canary of revision 2 held at a manual step, from step 3 of 3") {
		t.Fatalf("the plan of a held canary (exit %d) does not say the next apply continues it:\n%s", code, plan)
	}

	// The promote action with no apply running: its command waits for the next apply.
	ops.write(strings.Replace(ops.configText(t), `service     = "web"`, "service     = \"web\"\n    wait        = \"2s\"", -1))
	out = ops.mustRun("apply", "-invoke=action.release_canary_promote.web", "-auto-approve")
	if !strings.Contains(out, "Command Not Carried Out Yet") {
		t.Errorf("the promote action with no apply running does not say its command waits:\n%s", out)
	}
	plan = w.mustRun("plan")
	if !strings.Contains(plan, "promote the canary of revision 2, as the promote action asked") {
		t.Errorf("the plan after the promote action does not show the promotion:\n%s", plan)
	}
	w.mustRun("apply", "-auto-approve")
	if err := f.stopCanaryLoad("manual step, then promote", "", "1.0.0", "2.0.0"); err != nil {
		t.Error(err)
	}
	if err := f.allServe("2.0.0", 20); err != nil {
		t.Error(err)
	}
	if err := f.checkOnly("2")(nil); err != nil {
		t.Error(err)
	}
	if out, code := w.run("plan", "-detailed-exitcode"); code != 0 {
		t.Errorf("the plan after the promotion is not empty (exit %d):\n%s", code, out)
	}
}
