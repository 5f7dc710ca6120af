package provider

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/acctest"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/releasekit/terraform-provider-release/internal/docker"
	"github.com/releasekit/terraform-provider-release/internal/router"
)

// hard_stop_after and timeout_tunnel: written into the router's base
// configuration, changed in place with a reload (same container), read back
// from the file (a value edited by hand shows in the plan; an earlier
// version's file without the runtime socket is drift that apply repairs),
// imported, and refused at plan when out of range.
func TestAccRouter_timeoutsDriftAndImport(t *testing.T) {
	testAccPreCheck(t)
	name := "acc-" + acctest.RandStringFromCharSet(6, "abcdefghijklmnopqrstuvwxyz")
	haproxy := testStackEnv(t, "RELEASE_TEST_HAPROXY_IMAGE")
	engine := docker.NewEngine(docker.NewConnector(docker.ConfigFromEnv()))
	port := freePort(t)
	config := func(extra string) string {
		return fmt.Sprintf(`
resource "release_router" "edge" {
  name  = %q
  image = %q
  ports = [{ internal = 80, external = %d }]
  %s
}
`, name, haproxy, port, extra)
	}
	ctx := context.Background()
	base := func() string {
		files, err := engine.ReadDir(ctx, router.ContainerName(name), router.ConfigDir)
		if err != nil {
			t.Fatal(err)
		}
		return string(files[router.BaseFile])
	}
	baseHas := func(want ...string) resource.TestCheckFunc {
		return func(*terraform.State) error {
			b := base()
			for _, w := range want {
				if !strings.Contains(b, w) {
					return fmt.Errorf("the base configuration lacks %q:\n%s", w, b)
				}
			}
			return nil
		}
	}
	writeBase := func(content string) {
		if err := engine.CopyFiles(ctx, router.ContainerName(name), router.ConfigDir, []docker.File{{Path: router.BaseFile, Content: []byte(content), Mode: 0o644}}); err != nil {
			t.Fatal(err)
		}
	}
	var containerID string
	sameContainer := func(s *terraform.State) error {
		id := s.RootModule().Resources["release_router.edge"].Primary.Attributes["container_id"]
		if containerID == "" {
			containerID = id
		} else if id != containerID {
			return fmt.Errorf("the container was replaced (%s, then %s): a timeout changes in place", containerID, id)
		}
		return nil
	}
	socket := "stats socket " + router.RuntimeSocket + " mode 600 level admin"
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy: func(*terraform.State) error {
			if _, err := engine.Inspect(ctx, router.ContainerName(name)); !docker.IsNotFound(err) {
				return fmt.Errorf("the router container remains after destroy (%v)", err)
			}
			return nil
		},
		Steps: []resource.TestStep{
			{
				Config:      config(`hard_stop_after = "500ms"`),
				PlanOnly:    true,
				ExpectError: expectDiag(`(?s)Invalid Duration.*hard_stop_after must be a duration from 1s to 24h, such as 30s, 5m or 1h; got "500ms"`),
			},
			{
				Config:      config(`timeout_tunnel = "2d"`),
				PlanOnly:    true,
				ExpectError: expectDiag(`(?s)Invalid Duration.*timeout_tunnel must be a duration from 1s to 24h`),
			},
			{
				Config: config(`hard_stop_after = "2m"`),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("release_router.edge", tfjsonpath.New("hard_stop_after"), knownvalue.StringExact("2m")),
					statecheck.ExpectKnownValue("release_router.edge", tfjsonpath.New("timeout_tunnel"), knownvalue.StringExact("1h")),
				},
				Check: resource.ComposeTestCheckFunc(baseHas("hard-stop-after 120s", "timeout tunnel 3600s", socket), sameContainer),
			},
			{
				Config: config(`hard_stop_after = "90s"
  timeout_tunnel = "15m"`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("release_router.edge", plancheck.ResourceActionUpdate),
				}},
				Check: resource.ComposeTestCheckFunc(baseHas("hard-stop-after 90s", "timeout tunnel 900s", socket), sameContainer),
			},
			{
				// Edited by hand: the plan shows the router's value going back.
				PreConfig: func() { writeBase(strings.Replace(base(), "hard-stop-after 90s", "hard-stop-after 30s", 1)) },
				Config: config(`hard_stop_after = "90s"
  timeout_tunnel = "15m"`),
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
			},
			{
				// An earlier version's base file: no runtime socket. Drift, repaired.
				PreConfig: func() { writeBase(strings.Replace(base(), "    "+socket+"\n", "", 1)) },
				Config: config(`hard_stop_after = "90s"
  timeout_tunnel = "15m"`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("release_router.edge", plancheck.ResourceActionUpdate),
				}},
				Check: resource.ComposeTestCheckFunc(baseHas("hard-stop-after 90s", "timeout tunnel 900s", socket), sameContainer),
			},
			{
				Config: config(`hard_stop_after = "90s"
  timeout_tunnel = "15m"`),
				PlanOnly: true,
			},
			{
				ResourceName:      "release_router.edge",
				ImportState:       true,
				ImportStateId:     name,
				ImportStateVerify: true,
				ImportStateCheck: func(states []*terraform.InstanceState) error {
					if got := states[0].Attributes["hard_stop_after"]; got != "90s" {
						return fmt.Errorf("imported hard_stop_after %q, want 90s", got)
					}
					if got := states[0].Attributes["timeout_tunnel"]; got != "15m" {
						return fmt.Errorf("imported timeout_tunnel %q, want 15m", got)
					}
					return nil
				},
			},
		},
	})
}
