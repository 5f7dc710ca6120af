package provider

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
)

// expectDigestChange checks what a reviewer reads in the plan of a release:
// the environment updated in place, its digest going from one to the other.
type expectDigestChange struct {
	address, from, to string
}

func (e expectDigestChange) CheckPlan(_ context.Context, req plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
	for _, rc := range req.Plan.ResourceChanges {
		if rc.Address != e.address {
			continue
		}
		if !rc.Change.Actions.Update() {
			resp.Error = fmt.Errorf("%s: planned %v, want an in-place update", e.address, rc.Change.Actions)
			return
		}
		before, _ := rc.Change.Before.(map[string]any)
		after, _ := rc.Change.After.(map[string]any)
		if before["digest"] != e.from || after["digest"] != e.to {
			resp.Error = fmt.Errorf("%s: digest %v -> %v in the plan, want %s -> %s", e.address, before["digest"], after["digest"], e.from, e.to)
		}
		return
	}
	resp.Error = fmt.Errorf("%s is not in the plan", e.address)
}

// promotionConfig renders staging and production of one service on one
// router; production takes only what staging verified.
func (f *envFixture) promotionConfig(staging, production string) string {
	return fmt.Sprintf(`
resource "release_router" "edge" {
  name  = %[1]q
  image = %[2]q
  ports = [{ internal = 80, external = %[3]d }, { internal = 81, external = %[4]d }]
}

resource "release_environment" "staging" {
  name        = "%[5]s-stg"
  service     = "web"
  image       = "%[6]s@%[7]s"
  router      = release_router.edge.id
  listen_port = 81
  health_check = { interval = "500ms" }
}

resource "release_environment" "production" {
  name         = "%[5]s-prd"
  service      = "web"
  image        = "%[6]s@%[8]s"
  router       = release_router.edge.id
  health_check = { interval = "500ms" }
  promote_from = release_environment.staging.verified
}
`, f.router, f.haproxy, f.port, freePort(f.t), f.env, f.repo, staging, production)
}

// Within one state: production refuses a digest staging has not verified,
// at plan time, naming what staging serves and verified; it takes the same
// digest once staging released it.
func TestAccEnvironmentPromotion_sameState(t *testing.T) {
	f := newEnvFixture(t)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{Config: f.promotionConfig(f.v1, f.v1)},
			{
				Config:      f.promotionConfig(f.v1, f.v2),
				PlanOnly:    true,
				ExpectError: expectDiag(`(?s)Digest Not Verified Upstream.*` + f.env + `-prd/web would release ` + f.v2 + `, which ` + f.env + `-stg/web has not verified.*serves ` + f.v1 + ` and has verified: ` + f.v1),
			},
			{
				// Staging releases v2 first; production is unchanged.
				Config: f.promotionConfig(f.v2, f.v1),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("release_environment.staging", tfjsonpath.New("verified").AtMapKey("digests"),
						knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact(f.v2), knownvalue.StringExact(f.v1)})),
				},
			},
			{
				Config: f.promotionConfig(f.v2, f.v2),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					expectDigestChange{"release_environment.production", f.v1, f.v2},
					plancheck.ExpectKnownValue("release_environment.production", tfjsonpath.New("rollout"), knownvalue.StringExact("hard switch")),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("release_environment.production", tfjsonpath.New("digest"), knownvalue.StringExact(f.v2)),
				},
			},
		},
	})
}

// Across two states: production's state reads staging through the data
// source and gets the same gate.
func TestAccEnvironmentPromotion_acrossStates(t *testing.T) {
	f := newEnvFixture(t)
	stagingPort, productionPort := freePort(t), freePort(t)
	staging := func(digest string) string {
		return fmt.Sprintf(`
resource "release_router" "staging" {
  name  = "%[1]s-stg"
  image = %[2]q
  ports = [{ internal = 80, external = %[3]d }]
}

resource "release_environment" "staging" {
  name   = "%[4]s-stg"
  service = "web"
  image  = "%[5]s@%[6]s"
  router = release_router.staging.id
}
`, f.router, f.haproxy, stagingPort, f.env, f.repo, digest)
	}
	production := func(digest string) string {
		return fmt.Sprintf(`
data "release_environment" "staging" {
  name    = "%[4]s-stg"
  service = "web"
}

resource "release_router" "production" {
  name  = "%[1]s-prd"
  image = %[2]q
  ports = [{ internal = 80, external = %[3]d }]
}

resource "release_environment" "production" {
  name         = "%[4]s-prd"
  service      = "web"
  image        = "%[5]s@%[6]s"
  router       = release_router.production.id
  promote_from = data.release_environment.staging.verified
}

output "digest" {
  value = release_environment.production.digest
}
`, f.router, f.haproxy, productionPort, f.env, f.repo, digest)
	}
	stg := newTFWorkspace(t, staging(f.v1))
	prd := newTFWorkspace(t, production(f.v1))
	// Cleanups run last in, first out: production goes first, while staging still answers the data source.
	stg.destroyOnCleanup()
	prd.destroyOnCleanup()

	stg.mustRun("apply", "-auto-approve")
	prd.mustRun("apply", "-auto-approve")

	prd.write(production(f.v2))
	out, code := prd.run("plan")
	want := regexp.MustCompile(`(?s)Digest Not Verified Upstream.*` + f.env + `-stg/web has\s+not\s+verified`)
	if code == 0 || !want.MatchString(out) || !strings.Contains(strings.Join(strings.Fields(out), ""), "serves"+f.v1+"andhasverified:"+f.v1) {
		t.Fatalf("production's plan of an unverified digest (exit %d) does not name what staging verified:\n%s", code, out)
	}

	stg.write(staging(f.v2))
	stg.mustRun("apply", "-auto-approve")
	prd.mustRun("apply", "-auto-approve")
	if got := prd.output("digest"); got != f.v2 {
		t.Errorf("production serves %s after the promotion, want %s", got, f.v2)
	}
}
