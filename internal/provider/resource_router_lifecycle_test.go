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

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/releasekit/terraform-provider-release/internal/naming"
	"github.com/releasekit/terraform-provider-release/internal/router"
)

// planCheckFunc is a plan check written as a function. A check may also act
// on the host: it runs after the plan was saved and before it is applied.
type planCheckFunc func(ctx context.Context, req plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse)

func (f planCheckFunc) CheckPlan(ctx context.Context, req plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
	f(ctx, req, resp)
}

// expectRefreshed checks an attribute of a resource as the plan's refresh
// read it from the host: what the plan tells the user about the state.
func expectRefreshed(address, attribute string, want *regexp.Regexp) plancheck.PlanCheck {
	return planCheckFunc(func(_ context.Context, req plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
		if req.Plan.PriorState == nil || req.Plan.PriorState.Values == nil {
			resp.Error = fmt.Errorf("the plan has no refreshed state")
			return
		}
		for _, r := range req.Plan.PriorState.Values.RootModule.Resources {
			if r.Address == address {
				got := fmt.Sprint(r.AttributeValues[attribute])
				if !want.MatchString(got) {
					resp.Error = fmt.Errorf("%s.%s after refresh is %q, want it to match %s", address, attribute, got, want)
				}
				return
			}
		}
		resp.Error = fmt.Errorf("%s is not in the refreshed state", address)
	})
}

// serves checks that a listener on the host answers 200 with a version.
func serves(port int, version string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && strings.Contains(string(body), "version="+version+" ") {
				return nil
			}
			err = fmt.Errorf("HTTP %d %q", resp.StatusCode, body)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("port %d does not serve version %s: %v", port, version, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Fault 07: an environment destroyed while its router is stopped. The
// destroy removes the environment's network; a router that still referred
// to it could never start again ("network … not found"), every later apply
// failed, and a -replace of the router failed once with "Provider produced
// inconsistent final plan". Now the stopped router is detached from the
// environment (route emptied, network left) before the network goes, a
// router left attached to a removed network is explained by the plan and
// repaired by the apply, and a replaced router serves every environment again.
func TestAccFault07_destroyWithRouterStopped(t *testing.T) {
	f := newEnvFixture(t)
	ctx := context.Background()
	other := f.env + "-b"
	otherPort := freePort(t)
	routerName := router.ContainerName(f.router)
	twoListeners := strings.Replace(f.config(f.v1, ""), "ports = [{ internal = 80, external = "+fmt.Sprint(f.port)+" }]",
		fmt.Sprintf("ports = [{ internal = 80, external = %d }, { internal = 81, external = %d }]", f.port, otherPort), 1)
	otherEnv := fmt.Sprintf(`
resource "release_environment" "other" {
  name        = %q
  service     = "web"
  image       = "%s@%s"
  router      = release_router.edge.id
  listen_port = 81
  health_check = { interval = "500ms", start_timeout = "20s" }
  stop_timeout = "5s"
}
`, other, f.repo, f.v2)
	both := twoListeners + otherEnv
	onlyOther := strings.Split(twoListeners, `resource "release_environment" "web"`)[0] + otherEnv
	otherServes := func(*terraform.State) error { return serves(otherPort, "2.0.0", 15*time.Second) }

	// The router stops after the plan and before the apply: the destroy
	// finds it stopped, as after a crash or a `docker stop` during a pipeline.
	stopRouterBeforeApply := planCheckFunc(func(_ context.Context, _ plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
		resp.Error = f.engine.Stop(ctx, routerName, 5*time.Second)
	})
	detached := func(*terraform.State) error {
		c, err := f.engine.Inspect(ctx, routerName)
		if err != nil {
			return err
		}
		if c.Running() {
			return fmt.Errorf("the router runs: the destroy was meant to find it stopped")
		}
		for _, n := range c.Networks {
			if n == naming.NetworkName(f.env, "web") {
				return fmt.Errorf("the stopped router is still attached to %s, the destroyed environment's network", n)
			}
		}
		files, err := f.engine.ReadDir(ctx, c.ID, router.ConfigDir)
		if err != nil {
			return err
		}
		if route := files[router.RouteFileName(f.env, "web")]; len(route) > 0 {
			return fmt.Errorf("the destroyed environment's route is still in the stopped router:\n%s", route)
		}
		return nil
	}
	// `docker start` of the router, as an operator would after the outage.
	startRouter := func(*terraform.State) error {
		if err := f.engine.Start(ctx, routerName); err != nil {
			return fmt.Errorf("docker start of the router after the environment was destroyed: %w", err)
		}
		return nil
	}
	// A stopped router left attached to a network that was removed, as the
	// destroy of an earlier version of the provider left it.
	orphanNetwork := func() {
		gone := "release-" + f.env + "-gone"
		if err := f.engine.Stop(ctx, routerName, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		if _, err := f.engine.EnsureNetwork(ctx, gone, nil); err != nil {
			t.Fatal(err)
		}
		if err := f.engine.ConnectNetwork(ctx, gone, routerName); err != nil {
			t.Fatal(err)
		}
		if err := f.engine.RemoveNetwork(ctx, gone); err != nil {
			t.Fatal(err)
		}
		if err := f.engine.Start(ctx, routerName); err == nil || !strings.Contains(err.Error(), "not found") {
			t.Fatalf("docker start of a router attached to a removed network = %v, want Docker's network not found", err)
		}
	}
	routerRunning := func(*terraform.State) error {
		c, err := f.engine.Inspect(ctx, routerName)
		if err != nil {
			return err
		}
		if !c.Running() {
			return fmt.Errorf("the router is %s after the apply", c.State)
		}
		return nil
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             f.checkDestroyed,
		Steps: []resource.TestStep{
			{Config: both, Check: resource.ComposeTestCheckFunc(f.checkServes("1.0.0"), otherServes)},
			{
				// Destroy environment web; the router stops between plan and apply.
				Config: onlyOther,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("release_environment.web", plancheck.ResourceActionDestroy),
					stopRouterBeforeApply,
				}},
				Check: resource.ComposeTestCheckFunc(detached, startRouter, otherServes),
			},
			{
				// The plan explains a router that cannot start; the apply repairs it and the other environment serves.
				PreConfig: orphanNetwork,
				Config:    onlyOther,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("release_router.edge", plancheck.ResourceActionUpdate),
					expectRefreshed("release_router.edge", "drift", regexp.MustCompile(`exited.*network release-`+f.env+`-gone, which no longer exists`)),
				}},
				Check: resource.ComposeTestCheckFunc(routerRunning, otherServes),
			},
			{
				// -replace of a router that cannot start, the way out users took: it
				// applies at once, and the new container serves the remaining environment.
				PreConfig: orphanNetwork,
				Config:    onlyOther,
				Taint:     []string{"release_router.edge"},
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("release_router.edge", plancheck.ResourceActionDestroyBeforeCreate),
				}},
				Check: resource.ComposeTestCheckFunc(routerRunning, otherServes),
			},
		},
	})
}
