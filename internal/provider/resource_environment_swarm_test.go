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
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/releasekit/terraform-provider-release/internal/docker"
	"github.com/releasekit/terraform-provider-release/internal/naming"
)

// newSwarmFixture is an environment with swarm = {} on the stack's
// single-node swarm (scripts/stack.sh up makes it).
func newSwarmFixture(t *testing.T) *envFixture {
	f := newEnvFixture(t)
	if ok, err := f.engine.SwarmManager(context.Background()); err != nil || !ok {
		t.Fatalf("the stack's Docker Engine is not a swarm manager (%v): run scripts/stack.sh up", err)
	}
	f.swarm = true
	return f
}

// checkServices proves exactly want replicas of the environment run, all
// of the given revision, each a Swarm service's task on the environment's
// overlay network.
func (f *envFixture) checkServices(revision string, want int) resource.TestCheckFunc {
	return func(*terraform.State) error {
		running := 0
		for _, c := range f.containers() {
			if !c.Running() {
				continue // a retained revision may be containers of one host
			}
			if !docker.IsService(c.ID) {
				return fmt.Errorf("%s runs as a container, not as a Swarm service", c.Name)
			}
			running++
			if c.Labels[naming.LabelRevision] != revision {
				return fmt.Errorf("service %s of revision %s runs, want only revision %s", c.Name, c.Labels[naming.LabelRevision], revision)
			}
			if c.IPs[naming.OverlayNetworkName(f.env, "web")] == "" {
				return fmt.Errorf("service %s has no address on %s: %v", c.Name, naming.OverlayNetworkName(f.env, "web"), c.IPs)
			}
		}
		if running != want {
			return fmt.Errorf("%d services of %s run, want %d", running, f.env, want)
		}
		return nil
	}
}

// serviceIDs are the IDs of a revision's services.
func (f *envFixture) serviceIDs(revision string) []string {
	var ids []string
	for _, c := range f.containers() {
		if c.Labels[naming.LabelRevision] == revision {
			ids = append(ids, c.ID)
		}
	}
	return ids
}

// On a single-node swarm: a first release, then 10 hard switches under
// constant load (keep-alive and a new connection per request) with no
// failed request, a rollback by revert that scales the retained revision's
// own service back up (nothing created, nothing pulled), an import, the
// serving service scaled to 0 by hand (the plan shows it, the apply
// repairs it), and an unhealthy revision rejected while the serving one
// goes on.
func TestAccEnvironmentSwarm_switchesRollbackAndDrift(t *testing.T) {
	f := newSwarmFixture(t)
	switchConfig := func(i int) string {
		digest := f.v1
		if i%2 == 1 {
			digest = f.v2
		}
		return f.config(digest, fmt.Sprintf(`env = { SWITCH = "%d" }`, i))
	}
	version := func(i int) string {
		if i%2 == 1 {
			return "2.0.0"
		}
		return "1.0.0"
	}
	steps := []resource.TestStep{{
		Config: switchConfig(0),
		Check:  resource.ComposeTestCheckFunc(f.checkServes("1.0.0"), f.checkServices("1", 2)),
		ConfigStateChecks: []statecheck.StateCheck{
			statecheck.ExpectKnownValue("release_environment.web", tfjsonpath.New("network"), knownvalue.StringExact(naming.OverlayNetworkName(f.env, "web"))),
		},
	}}
	const switches = 10
	for i := 1; i <= switches; i++ {
		rev := fmt.Sprint(i + 1)
		steps = append(steps, resource.TestStep{
			PreConfig: f.startLoad,
			Config:    switchConfig(i),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectKnownValue("release_environment.web", tfjsonpath.New("rollout"), knownvalue.StringRegexp(regexp.MustCompile(`^hard switch`))),
			}},
			Check: resource.ComposeTestCheckFunc(
				f.checkLoad(fmt.Sprintf("switch %d on a swarm", i), version(i-1), version(i)),
				f.checkServes(version(i)),
				f.checkServices(rev, 2)),
		})
	}
	// Revision 10 (switch 9) is retained: reverting to its configuration scales its own services back up.
	var retained []string
	steps = append(steps, resource.TestStep{
		PreConfig: func() {
			retained = f.serviceIDs("10")
			if len(retained) != 2 {
				t.Fatalf("revision 10 has %d services, want 2 retained", len(retained))
			}
			f.startLoad()
		},
		Config: switchConfig(switches - 1),
		ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
			plancheck.ExpectKnownValue("release_environment.web", tfjsonpath.New("rollout"),
				knownvalue.StringExact("rollback to revision 10: a hard switch to its retained containers")),
		}},
		Check: resource.ComposeTestCheckFunc(
			f.checkLoad("rollback by revert on a swarm", version(switches), version(switches-1)),
			f.checkServes(version(switches-1)),
			f.checkServices("10", 2),
			func(*terraform.State) error {
				if got := f.serviceIDs("10"); strings.Join(got, ",") != strings.Join(retained, ",") {
					return fmt.Errorf("revision 10 is served by services %v, not by its retained %v", got, retained)
				}
				return nil
			}),
		ConfigStateChecks: []statecheck.StateCheck{
			statecheck.ExpectKnownValue("release_environment.web", tfjsonpath.New("revision"), knownvalue.Int64Exact(10)),
		},
	})
	// Import reads the environment back from the swarm, swarm = {} included.
	steps = append(steps, resource.TestStep{
		ResourceName:            "release_environment.web",
		ImportState:             true,
		ImportStateId:           f.env + "/web",
		ImportStateVerify:       true,
		ImportStateVerifyIgnore: []string{"replicas", "health_check", "stop_timeout", "timeouts", "env", "command", "rollout"},
	})
	// A serving service scaled to 0 by hand: drift in the plan, repaired by apply.
	steps = append(steps, resource.TestStep{
		PreConfig: func() {
			// Stopping replica 1 scales the revision's service to 0, as `docker service scale …=0` does.
			ids := f.serviceIDs("10")
			if err := f.engine.Stop(context.Background(), ids[0], 0); err != nil {
				t.Fatal(err)
			}
		},
		Config:             switchConfig(switches - 1),
		PlanOnly:           true,
		ExpectNonEmptyPlan: true,
	}, resource.TestStep{
		Config: switchConfig(switches - 1),
		Check:  resource.ComposeTestCheckFunc(f.checkServes(version(switches-1)), f.checkServices("10", 2)),
	}, resource.TestStep{
		Config:             switchConfig(switches - 1),
		PlanOnly:           true,
		ExpectNonEmptyPlan: false,
	}, resource.TestStep{
		PreConfig:   f.startLoad,
		Config:      f.config(f.v2, `env = { HEALTH = "fail" }`),
		ExpectError: expectDiag(`(?s)New Containers Not Healthy.*Traffic was never moved`),
	}, resource.TestStep{
		PreConfig: func() {
			if err := f.stopLoad("rejected unhealthy revision on a swarm", version(switches-1)); err != nil {
				t.Fatal(err)
			}
		},
		Config:             switchConfig(switches - 1),
		PlanOnly:           true,
		ExpectNonEmptyPlan: false,
	})
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             f.checkDestroyed,
		Steps:                    steps,
	})
}

// On a single-node swarm, under constant load: a good canary is promoted,
// and a canary answering 5% errors is aborted with every user back on
// stable and the state left on it.
func TestAccEnvironmentSwarm_canaryPromotesAndAborts(t *testing.T) {
	f := &canaryFixture{envFixture: newSwarmFixture(t), prometheus: testStackEnv(t, "RELEASE_TEST_PROMETHEUS_URL")}
	f.report = t.TempDir() + "/canary-report.md"
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             f.checkDestroyed,
		Steps: []resource.TestStep{
			{
				Config: f.config(f.v1, ""),
				Check:  resource.ComposeTestCheckFunc(f.checkServes("1.0.0"), f.checkServices("1", 2)),
			},
			{
				PreConfig:   f.startLoad,
				Config:      f.config(f.v2, `env = { ERROR_RATE = "0.05" }`),
				ExpectError: expectDiag(`(?s)Canary Aborted.*error rate.*Every user was back on revision 1 [0-9.]+m?s after the decision`),
			},
			{
				PreConfig: func() {
					if err := f.stopCanaryLoad("canary with 5% errors on a swarm", "2.0.0", "1.0.0"); err != nil {
						t.Fatal(err)
					}
				},
				Config:             f.config(f.v1, ""),
				PlanOnly:           true,
				ExpectNonEmptyPlan: false,
			},
			{
				PreConfig: func() { f.startLoad(); f.startUsers() },
				Config:    f.config(f.v2, ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectKnownValue("release_environment.web", tfjsonpath.New("rollout"), knownvalue.StringExact("canary: "+canarySchedule)),
				}},
				Check: resource.ComposeTestCheckFunc(
					func(*terraform.State) error {
						return f.stopCanaryLoad("canary of good v2 on a swarm", "", "1.0.0", "2.0.0")
					},
					f.checkServes("2.0.0"),
					f.checkOnly("2"), // an aborted canary's revision number is taken again
					f.checkServices("2", 2),
					f.checkReport(`promoted`),
				),
			},
		},
	})
}

// terraform SIGKILLed mid-canary on a swarm: the next plan shows it and
// the next apply resumes and converges, as on one host.
func TestAccEnvironmentSwarm_killedCanaryConverges(t *testing.T) {
	f := &canaryFixture{envFixture: newSwarmFixture(t), prometheus: testStackEnv(t, "RELEASE_TEST_PROMETHEUS_URL")}
	f.report = t.TempDir() + "/canary-report.md"
	testKilledCanaryConverges(t, f)
}

// On a single-node swarm, the environment and its migrations both: each
// up runs once, as a replicated job, before the switch that needs it; the
// revert switches back first and runs the down once after it.
func TestAccEnvironmentSwarm_migrationsRunAsJobs(t *testing.T) {
	f := newMigFixture(t)
	f.envFixture = newSwarmFixture(t)
	ranAsJobs := func(*terraform.State) error {
		runs, err := f.engine.List(context.Background(), map[string]string{naming.LabelKind: string(naming.KindMigration)})
		if err != nil {
			return err
		}
		jobs := 0
		for _, c := range runs {
			if !strings.Contains(c.Name, "-up") || (docker.IsService(c.ID) && !strings.Contains(strings.Join(c.Env, " "), "MIGRATION_VERSION="+f.id)) {
				continue
			}
			if !docker.IsService(c.ID) {
				full, err := f.engine.Inspect(context.Background(), c.ID)
				if err != nil || !strings.Contains(strings.Join(full.Env, " "), "MIGRATION_VERSION="+f.id) {
					continue // another test's run
				}
			}
			if !docker.IsService(c.ID) {
				return fmt.Errorf("the migration run %s is a container, not a Swarm job", c.Name)
			}
			if code, _, _, err := f.engine.ExitCode(context.Background(), c.ID); err != nil || code != 0 || c.State != "exited" {
				return fmt.Errorf("the migration job %s: %s, exit code %d (%v)", c.Name, c.State, code, err)
			}
			jobs++
		}
		if jobs < 2 {
			return fmt.Errorf("%d finished migration jobs, want the up of each of the 2 migrations", jobs)
		}
		return nil
	}
	testMigrationRevert(t, f, ranAsJobs)
	for _, event := range []string{"up " + f.id + "_1", "up " + f.id + "_2", "down " + f.id + "_2", "down " + f.id + "_1"} {
		var n int
		if err := f.db.QueryRow(`SELECT count(*) FROM release_audit WHERE event = $1`, event).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("%q ran %d times, want once", event, n)
		}
	}
}

// Plan-time errors of swarm: a constraint Swarm would refuse, and a Docker
// host that is a swarm's worker, not a manager.
func TestAccEnvironmentSwarm_planErrors(t *testing.T) {
	f := newSwarmFixture(t)
	worker := &envFixture{}
	*worker = *f
	worker.dockerHost = "unix://" + testStackEnv(t, "RELEASE_TEST_SWARM3_DIR") + "/sw2/docker.sock"
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{
				Config:      strings.Replace(f.config(f.v1, ""), "swarm = {}", `swarm = { constraints = ["zone a"] }`, 1),
				PlanOnly:    true,
				ExpectError: expectDiag(`(?s)swarm.constraints.*must be a Swarm constraint such as`),
			},
			{
				Config:      worker.config(f.v1, ""),
				PlanOnly:    true,
				ExpectError: expectDiag(`(?s)Docker Host Is Not a Swarm Manager.*is not a manager of a swarm.*docker swarm init`),
			},
		},
	})
}

// A module moves from one host to the swarm by setting swarm = {}, and
// back by removing it: each is a hard switch between the containers and
// the services under load, with no failed request.
func TestAccEnvironmentSwarm_movesFromHostAndBack(t *testing.T) {
	f := newSwarmFixture(t)
	onHost := func(digest string) string {
		f.swarm = false
		defer func() { f.swarm = true }()
		return f.config(digest, "")
	}
	containersOnly := func(revision string) resource.TestCheckFunc {
		return func(*terraform.State) error {
			for _, c := range f.containers() {
				if c.Running() && (docker.IsService(c.ID) || c.Labels[naming.LabelRevision] != revision) {
					return fmt.Errorf("%s (revision %s) runs, want only the containers of revision %s", c.Name, c.Labels[naming.LabelRevision], revision)
				}
			}
			return nil
		}
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             f.checkDestroyed,
		Steps: []resource.TestStep{
			{
				Config: onHost(f.v1),
				Check:  resource.ComposeTestCheckFunc(f.checkServes("1.0.0"), containersOnly("1")),
			},
			{
				PreConfig: f.startLoad,
				Config:    f.config(f.v1, ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("release_environment.web", plancheck.ResourceActionUpdate),
					plancheck.ExpectKnownValue("release_environment.web", tfjsonpath.New("rollout"), knownvalue.StringExact("hard switch")),
				}},
				Check: resource.ComposeTestCheckFunc(f.checkLoad("from the host to the swarm", "1.0.0"), f.checkServes("1.0.0"), f.checkServices("2", 2)),
			},
			{
				Config:             f.config(f.v1, ""),
				PlanOnly:           true,
				ExpectNonEmptyPlan: false,
			},
			{
				// Back to the host: revision 1's containers are retained, a rollback.
				PreConfig: f.startLoad,
				Config:    onHost(f.v1),
				Check:     resource.ComposeTestCheckFunc(f.checkLoad("from the swarm back to the host", "1.0.0"), f.checkServes("1.0.0"), containersOnly("1")),
			},
		},
	})
}
