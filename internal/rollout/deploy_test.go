package rollout

import (
	"errors"
	"testing"
)

// What Plan decides is what Deploy does, and a plan the host no longer
// supports is refused before anything changes.
func TestDeployCarriesOutThePlannedDecision(t *testing.T) {
	h := newHarness(t)
	h.deploy(webSpec("production", digest1))
	spec := webSpec("production", digest2)
	// As the provider's plan does: observe the host, then decide.
	planned := Decide(h.observe("production"), spec)
	if planned.Kind != HardSwitch {
		t.Fatalf("Decide = %v; want a hard switch", planned)
	}
	spec.Planned = planned.String()
	res := h.deploy(spec)
	if res.Decision.String() != planned.String() || res.Status.Revision != planned.Revision {
		t.Errorf("Deploy did %q (revision %d), the plan said %q (revision %d)", res.Decision, res.Status.Revision, planned, planned.Revision)
	}
}

func TestDeployRefusesAPlanTheHostNoLongerSupports(t *testing.T) {
	h := newHarness(t)
	h.deploy(webSpec("production", digest1))
	spec := webSpec("production", digest2)
	spec.Planned = "rollback to revision 7: a hard switch to its retained containers"
	creates, route := len(h.host.creates), string(h.route("production"))
	_, err := h.d.Deploy(h.ctx, spec)
	var changed *PlanChangedError
	if !errors.As(err, &changed) || changed.Now != "hard switch" {
		t.Fatalf("Deploy = %v, want a PlanChangedError saying the host now leads to a hard switch", err)
	}
	if len(h.host.creates) != creates || string(h.route("production")) != route {
		t.Errorf("a refused plan changed the host: %d containers created, route changed %v", len(h.host.creates)-creates, string(h.route("production")) != route)
	}
}
