package rollout

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/releasekit/terraform-provider-release/internal/canary"
)

// commandAt leaves cmd for the production canary when the canary's look n
// is taken; the loop reads it at its next analysis.
func (h *harness) commandAt(m *fakeMetrics, n int, cmd CanaryCommand) {
	prior := m.onLook
	m.onLook = func(look int) {
		if prior != nil {
			prior(look)
		}
		if look == n {
			if _, err := SendCommand(h.ctx, h.host, h.observe("production"), "production", "web", cmd); err != nil {
				h.t.Errorf("SendCommand(%s) at look %d: %v", cmd, n, err)
			}
		}
	}
}

func (h *harness) pendingCommand() CanaryCommand {
	cmd, _, err := PendingCommand(h.ctx, h.host, "production", "web")
	if err != nil {
		h.t.Fatal(err)
	}
	return cmd
}

func TestAbortCommandPutsUsersBackAtTheNextAnalysis(t *testing.T) {
	h := newHarness(t)
	h.deploy(webSpec("production", digest1))
	m := &fakeMetrics{sample: healthySample(200)}
	h.commandAt(m, 4, CommandAbort) // the first look of step 2

	_, err := h.d.Deploy(h.ctx, h.withCanary(webSpec("production", digest2), testPolicy(true), m))
	var aborted *CanaryAbortedError
	if !errors.As(err, &aborted) {
		t.Fatalf("Deploy = %v, want a CanaryAbortedError", err)
	}
	if aborted.Why != AbortedByAction || aborted.Step != 2 || aborted.Weight != 25 {
		t.Errorf("aborted at step %d (%d%%): %q; want step 2 (25%%): %q", aborted.Step, aborted.Weight, aborted.Why, AbortedByAction)
	}
	// No analysis after the command: users went back at the next one.
	if m.looks != 4 {
		t.Errorf("%d analyses were taken, want 4: the abort comes at the first analysis after the command", m.looks)
	}
	if got, want := h.routedNames("production"), []string{"r1-1", "r1-2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("routed to %v after the abort, want %v", got, want)
	}
	if cmd := h.pendingCommand(); cmd != CommandNone {
		t.Errorf("the command %q is left on the host after the canary ended", cmd)
	}
}

func TestPromoteCommandSkipsTheStepsLeft(t *testing.T) {
	h := newHarness(t)
	h.deploy(webSpec("production", digest1))
	m := &fakeMetrics{sample: healthySample(200)}
	h.routes.history = nil
	h.commandAt(m, 2, CommandPromote)

	res := h.deploy(h.withCanary(webSpec("production", digest2), testPolicy(true), m))
	if res.Status.Revision != 2 || res.Status.Canary != nil {
		t.Fatalf("after the promote command: revision %d, canary %+v", res.Status.Revision, res.Status.Canary)
	}
	var shares []int
	for _, w := range h.routeHistory() {
		shares = append(shares, canaryShare(w))
	}
	// The router's check, step 1 at 10%, then everyone on the canary.
	if want := []int{0, 10, 100, 0}; !reflect.DeepEqual(shares, want) {
		t.Errorf("canary shares of the routes written = %v, want %v", shares, want)
	}
	if m.looks != 2 {
		t.Errorf("%d analyses, want 2", m.looks)
	}
	if !strings.Contains(res.CanaryReport, "Promoted by action at step 1 of 3") {
		t.Errorf("the report does not say the action promoted it:\n%s", res.CanaryReport)
	}
	if cmd := h.pendingCommand(); cmd != CommandNone {
		t.Errorf("the command %q is left on the host", cmd)
	}
}

func TestHoldCommandKeepsTheWeightUntilPromoted(t *testing.T) {
	h := newHarness(t)
	h.deploy(webSpec("production", digest1))
	m := &fakeMetrics{sample: healthySample(200)}
	h.routes.history = nil
	h.commandAt(m, 2, CommandHold)
	h.commandAt(m, 9, CommandPromote) // step 1 alone would have ended at look 3
	start := h.clock.Now()

	res := h.deploy(h.withCanary(webSpec("production", digest2), testPolicy(true), m))
	if res.Status.Revision != 2 {
		t.Fatalf("after hold and promote: revision %d", res.Status.Revision)
	}
	var shares []int
	for _, w := range h.routeHistory() {
		shares = append(shares, canaryShare(w))
	}
	if want := []int{0, 10, 100, 0}; !reflect.DeepEqual(shares, want) {
		t.Errorf("canary shares of the routes written = %v, want %v (held at 10%%)", shares, want)
	}
	if m.looks != 9 {
		t.Errorf("%d analyses, want 9: the held canary is still judged every interval", m.looks)
	}
	if held := h.clock.Now().Sub(start); held < 90e9 {
		t.Errorf("the canary was held %s, want at least the 9 intervals", held)
	}
}

func TestCommandWithoutCanaryIsRefused(t *testing.T) {
	h := newHarness(t)
	h.deploy(webSpec("production", digest1))
	_, err := SendCommand(h.ctx, h.host, h.observe("production"), "production", "web", CommandAbort)
	var none *NoCanaryError
	if !errors.As(err, &none) {
		t.Fatalf("SendCommand without a canary = %v, want a NoCanaryError", err)
	}
	if cmd := h.pendingCommand(); cmd != CommandNone {
		t.Errorf("a command %q was left although no canary runs", cmd)
	}
}

func TestParseCanaryCommand(t *testing.T) {
	for _, s := range []string{"abort", "promote", "hold"} {
		if c, ok := ParseCanaryCommand(s); !ok || string(c) != s {
			t.Errorf("ParseCanaryCommand(%q) = %q, %v", s, c, ok)
		}
	}
	for _, s := range []string{"", "Abort", "resume"} {
		if _, ok := ParseCanaryCommand(s); ok {
			t.Errorf("ParseCanaryCommand(%q) accepted", s)
		}
	}
}

// A command left for a canary that an apply then removes (here: the
// configuration went back to the stable digest) does not stay on the host.
func TestCommandOfARemovedCanaryIsCleared(t *testing.T) {
	h := newHarness(t)
	h.deploy(webSpec("production", digest1))
	p := testPolicy(true)
	p.OnInterrupt = "resume"
	h.interrupt(h.withCanary(webSpec("production", digest2), p, &fakeMetrics{sample: healthySample(200)}), p, 2)
	if _, err := SendCommand(h.ctx, h.host, h.observe("production"), "production", "web", CommandHold); err != nil {
		t.Fatal(err)
	}
	h.deploy(h.withCanary(webSpec("production", digest1), p, &fakeMetrics{sample: healthySample(200)}))
	if cmd := h.pendingCommand(); cmd != CommandNone {
		t.Errorf("the command %q for the removed canary is still on the host", cmd)
	}
	// Destroying the environment removes a command with the rest.
	h.interrupt(h.withCanary(webSpec("production", digest2), p, &fakeMetrics{sample: healthySample(200)}), p, 2)
	if _, err := SendCommand(h.ctx, h.host, h.observe("production"), "production", "web", CommandAbort); err != nil {
		t.Fatal(err)
	}
	if err := h.d.Destroy(h.ctx, "production", "web", "router-1", time.Second); err != nil {
		t.Fatal(err)
	}
	if cmd := h.pendingCommand(); cmd != CommandNone {
		t.Errorf("the command %q outlived the environment", cmd)
	}
}

func manualPolicy() canary.Policy {
	p := testPolicy(true)
	p.Steps[1] = canary.Step{Weight: 25, Manual: true}
	p.OnInterrupt = "abort" // a held canary is not an interrupted one
	return p
}

// A manual step ends the apply with the canary held at its weight; the
// plan says so, and the next apply continues from the step after it.
func TestManualStepHoldsTheCanaryUntilTheNextApply(t *testing.T) {
	h := newHarness(t)
	h.deploy(webSpec("production", digest1))
	p := manualPolicy()
	spec := h.withCanary(webSpec("production", digest2), p, &fakeMetrics{sample: healthySample(200)})

	res := h.deploy(spec)
	if res.Held == nil || res.Held.Step != 2 || res.Held.Weight != 25 || res.Held.Revision != 2 {
		t.Fatalf("held = %+v, want revision 2 held at step 2 (25%%)", res.Held)
	}
	st := h.observe("production")
	if !st.Canary.Held() || st.Canary.Weight != 25 || st.Revision != 1 {
		t.Fatalf("after the manual step: revision %d, canary %+v", st.Revision, st.Canary)
	}
	if want := "a canary of revision 2 is held at 25% of traffic by a manual step: the next apply continues it"; !reflect.DeepEqual(st.Drift, []string{want}) {
		t.Errorf("drift = %q, want %q", st.Drift, want)
	}
	dec := Decide(st, spec)
	if dec.Kind != ResumeCanary || dec.FirstStep != 2 || dec.Continue != CommandHeld {
		t.Fatalf("the next decision is %+v, want to continue from step 3", dec)
	}
	if want := "continue the canary of revision 2 held at a manual step, from step 3 of 3: 50% for 30s"; !strings.HasPrefix(dec.String(), want) {
		t.Errorf("rollout = %q, want it to start %q", dec.String(), want)
	}

	res = h.deploy(h.withCanary(webSpec("production", digest2), p, &fakeMetrics{sample: healthySample(200)}))
	if res.Held != nil || res.Status.Revision != 2 || res.Status.Canary != nil {
		t.Fatalf("the continuing apply: held %+v, revision %d, canary %+v", res.Held, res.Status.Revision, res.Status.Canary)
	}
	if cmd := h.pendingCommand(); cmd != CommandNone {
		t.Errorf("the command %q is left after the promotion", cmd)
	}
}

// The promote action on a canary held at a manual step, with no apply
// running, is carried out by the next apply: straight to the promotion.
func TestPromoteActionOnAHeldCanaryPromotesAtTheNextApply(t *testing.T) {
	h := newHarness(t)
	h.deploy(webSpec("production", digest1))
	p := manualPolicy()
	h.deploy(h.withCanary(webSpec("production", digest2), p, &fakeMetrics{sample: healthySample(200)}))
	if _, err := SendCommand(h.ctx, h.host, h.observe("production"), "production", "web", CommandPromote); err != nil {
		t.Fatal(err)
	}
	m := &fakeMetrics{sample: healthySample(200)}
	spec := h.withCanary(webSpec("production", digest2), p, m)
	dec := Decide(h.observe("production"), spec)
	if dec.Kind != ResumeCanary || dec.Continue != CommandPromote || !strings.HasPrefix(dec.String(), "promote the canary of revision 2, as the promote action asked") {
		t.Fatalf("decision %+v (%q), want the promotion the action asked for", dec, dec.String())
	}
	h.routes.history = nil
	res := h.deploy(spec)
	if res.Status.Revision != 2 || res.Status.Canary != nil || m.looks != 0 {
		t.Fatalf("after the promote: revision %d, canary %+v, %d analyses", res.Status.Revision, res.Status.Canary, m.looks)
	}
	if !strings.Contains(res.CanaryReport, "Promoted by action") {
		t.Errorf("report:\n%s", res.CanaryReport)
	}
	if cmd := h.pendingCommand(); cmd != CommandNone {
		t.Errorf("the command %q is left after the promotion", cmd)
	}
}

// The action waits for the apply to carry its command out, and says when
// the wait ended first (no apply runs the canary).
func TestAwaitCommand(t *testing.T) {
	h := newHarness(t)
	h.deploy(webSpec("production", digest1))
	p := manualPolicy()
	h.deploy(h.withCanary(webSpec("production", digest2), p, &fakeMetrics{sample: healthySample(200)}))
	rev, err := SendCommand(h.ctx, h.host, h.observe("production"), "production", "web", CommandPromote)
	if err != nil {
		t.Fatal(err)
	}
	start := h.clock.Now()
	carried, err := AwaitCommand(h.ctx, h.host, h.clock, "production", "web", CommandPromote, rev, 5*time.Second)
	if err != nil || carried {
		t.Fatalf("no apply runs: AwaitCommand = %v, %v; want false", carried, err)
	}
	if waited := h.clock.Now().Sub(start); waited < 5*time.Second {
		t.Errorf("waited %s, want the whole 5s", waited)
	}
	h.deploy(h.withCanary(webSpec("production", digest2), p, &fakeMetrics{sample: healthySample(200)}))
	if carried, err := AwaitCommand(h.ctx, h.host, h.clock, "production", "web", CommandPromote, rev, 5*time.Second); err != nil || !carried {
		t.Errorf("after the apply that promoted: AwaitCommand = %v, %v; want true", carried, err)
	}
}
