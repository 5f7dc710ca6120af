package provider

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/releasekit/terraform-provider-release/internal/naming"
	"github.com/releasekit/terraform-provider-release/internal/router"
)

// With the serving revision's containers stopped by hand, a canary has
// nothing to be compared with: the plan's rollout says the release will be
// a hard switch, and the apply does exactly that (read back from the
// containers' labels and the router's route), not a canary.
func TestAccEnvironment_planAndApplyTakeOneDecision(t *testing.T) {
	f := newCanaryFixture(t)
	const planned = "hard switch (no container of the serving revision 1 runs to compare a canary with)"
	stopServing := func() {
		for _, c := range f.containers() {
			if c.Running() {
				if err := f.engine.Stop(context.Background(), c.ID, time.Second); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	didHardSwitch := func(*terraform.State) error {
		var rev2 int
		for _, c := range f.containers() {
			if naming.TrackOf(c.Labels) != naming.TrackStable {
				return fmt.Errorf("container %s has track %s: the apply ran a canary, the plan said %q", c.Name, naming.TrackOf(c.Labels), planned)
			}
			if c.Labels[naming.LabelRevision] == "2" && c.Running() {
				rev2++
			}
		}
		if rev2 != 2 {
			return fmt.Errorf("revision 2 has %d running containers, want 2", rev2)
		}
		files, err := f.engine.ReadDir(context.Background(), router.ContainerName(f.router), router.ConfigDir)
		if err != nil {
			return err
		}
		for _, s := range router.ParseRouteServers(files[router.RouteFileName(f.env, "web")]) {
			if name, _ := naming.ParseServerName(s.Name); name.Track != naming.TrackStable || name.Revision != 2 {
				return fmt.Errorf("the route sends traffic to %s, want only revision 2's stable servers", s.Name)
			}
		}
		return nil
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             f.checkDestroyed,
		Steps: []resource.TestStep{
			{Config: f.config(f.v1, ""), Check: f.checkServes("1.0.0")},
			{
				PreConfig: stopServing,
				Config:    f.config(f.v2, ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectKnownValue("release_environment.web", tfjsonpath.New("rollout"), knownvalue.StringExact(planned)),
				}},
				Check: resource.ComposeTestCheckFunc(didHardSwitch, f.checkServes("2.0.0")),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("release_environment.web", tfjsonpath.New("rollout"), knownvalue.StringExact(planned)),
					statecheck.ExpectKnownValue("release_environment.web", tfjsonpath.New("revision"), knownvalue.Int64Exact(2)),
				},
			},
			{Config: f.config(f.v2, ""), PlanOnly: true},
		},
	})
}
