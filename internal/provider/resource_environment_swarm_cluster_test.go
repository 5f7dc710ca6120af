package provider

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/releasekit/terraform-provider-release/internal/docker"
	"github.com/releasekit/terraform-provider-release/internal/naming"
	"github.com/releasekit/terraform-provider-release/internal/router"
)

// clusterFixture is an environment on the stack's three-node swarm
// (engines in network namespaces, node sw1 the manager): the provider talks
// to sw1, the router runs there and answers on sw1's address, the nodes
// pull from the registry's listener on the cluster's bridge.
type clusterFixture struct {
	*envFixture
	dir string // the cluster's state: sw<N>/docker.pid
}

func newClusterFixture(t *testing.T) *clusterFixture {
	f := &clusterFixture{envFixture: newEnvFixture(t), dir: testStackEnv(t, "RELEASE_TEST_SWARM3_DIR")}
	registry := testStackEnv(t, "RELEASE_TEST_SWARM3_REGISTRY")
	f.dockerHost = testStackEnv(t, "RELEASE_TEST_SWARM3_DOCKER_HOST")
	f.address = testStackEnv(t, "RELEASE_TEST_SWARM3_ADDRESS")
	f.engine = docker.NewEngine(docker.NewConnector(docker.Config{Host: f.dockerHost}))
	local := testStackEnv(t, "RELEASE_TEST_REGISTRY")
	f.repo = strings.Replace(f.repo, local, registry, 1)
	f.haproxy = strings.Replace(f.haproxy, local, registry, 1)
	f.swarm = true
	if ok, err := f.engine.SwarmManager(context.Background()); err != nil || !ok {
		t.Fatalf("%s is not a swarm manager (%v): run scripts/stack.sh up", f.dockerHost, err)
	}
	return f
}

func (f *clusterFixture) config(digest, extra string) string {
	cfg := strings.Replace(f.envFixture.config(digest, extra), "replicas = 2", "replicas = 3", 1)
	// The router answers on the manager's address, where the tests' load reaches it.
	return strings.Replace(cfg, fmt.Sprintf("external = %d }", f.port), fmt.Sprintf("external = %d, host_ip = %q }", f.port, f.address), 1)
}

// docker runs the docker CLI against the manager.
func (f *clusterFixture) docker(args ...string) error {
	cmd := exec.Command("docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+f.dockerHost)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("docker %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// nodes are the nodes the running services of a revision are on, by node ID.
func (f *clusterFixture) nodes(revision string) (map[string]int, int) {
	f.t.Helper()
	placed, running := map[string]int{}, 0
	for _, c := range f.containers() {
		if c.Running() && c.Labels[naming.LabelRevision] == revision && c.Task != nil {
			placed[c.Task.Node]++
			running++
		}
	}
	return placed, running
}

func (f *clusterFixture) checkSpread(revision string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		placed, running := f.nodes(revision)
		f.t.Logf("revision %s: %d tasks over nodes %v", revision, running, placed)
		if running != 3 || len(placed) != 3 {
			return fmt.Errorf("revision %s has %d running tasks on %d nodes (%v), want 3 on 3", revision, running, len(placed), placed)
		}
		return nil
	}
}

// nodeID is the ID of node sw<n>.
func (f *clusterFixture) nodeID(n int) string {
	f.t.Helper()
	out, err := exec.Command("docker", "-H", f.dockerHost, "node", "inspect", "--format", "{{.ID}}", "sw"+strconv.Itoa(n)).Output()
	if err != nil {
		f.t.Fatalf("docker node inspect sw%d: %v", n, err)
	}
	return strings.TrimSpace(string(out))
}

// waitRouterUp waits until the router reports n servers of the route UP.
func (f *clusterFixture) waitRouterUp(n int, timeout time.Duration) {
	f.t.Helper()
	ctx := context.Background()
	c := &router.Controller{Docker: f.engine}
	defer c.Close()
	deadline := time.Now().Add(timeout)
	for {
		r, err := f.engine.Inspect(ctx, router.ContainerName(f.router))
		if err != nil {
			f.t.Fatal(err)
		}
		states, err := c.ServerStates(ctx, r.ID, 8404, router.BackendName(f.env, "web"))
		up := 0
		for _, s := range states {
			if s.Status == "UP" {
				up++
			}
		}
		if err == nil && up >= n {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("after %s the router has %d servers UP (%v, %v), want %d", timeout, up, states, err, n)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// waitRunningOff waits until 3 tasks of the revision run and none on the node.
func (f *clusterFixture) waitRunningOff(revision, node string, timeout time.Duration) {
	f.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		placed, running := f.nodes(revision)
		if running == 3 && placed[node] == 0 {
			f.t.Logf("revision %s runs again on %v", revision, placed)
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("after %s, revision %s has %d running tasks on %v (want 3, none on %s)", timeout, revision, running, placed, node)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// On the three-node swarm: replicas spread over the nodes; a switch under
// load with no failed request; a node drained under load with no failed
// request and a clean plan after it; a node whose engine is stopped, whose
// task Swarm starts again elsewhere and the router finds with no apply; a
// service scaled down by hand, which the plan shows and the apply repairs.
func TestAccSwarmCluster_spreadSwitchDrainAndNodeLoss(t *testing.T) {
	f := newClusterFixture(t)
	var drained string
	t.Cleanup(func() {
		_ = f.docker("node", "update", "--availability", "active", "sw2")
		// The stopped engine is started again by the stack's own script.
		if out, err := exec.Command("bash", filepath.Join("..", "..", "scripts", "stack.sh"), "up").CombinedOutput(); err != nil {
			t.Errorf("scripts/stack.sh up after the node loss: %v\n%s", err, out)
		}
	})
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             f.checkDestroyed,
		Steps: []resource.TestStep{
			{
				Config: f.config(f.v1, ""),
				Check:  resource.ComposeTestCheckFunc(f.checkServes("1.0.0"), f.checkServices("1", 3), f.checkSpread("1")),
			},
			{
				PreConfig: f.startLoad,
				Config:    f.config(f.v2, ""),
				Check: resource.ComposeTestCheckFunc(
					f.checkLoad("switch on three nodes", "1.0.0", "2.0.0"), f.checkServes("2.0.0"), f.checkServices("2", 3), f.checkSpread("2")),
			},
			{
				// Drain sw2 under load: Swarm moves its task, the router finds it
				// through Swarm's DNS; no request fails, and the plan is clean.
				PreConfig: func() {
					drained = f.nodeID(2)
					if placed, _ := f.nodes("2"); placed[drained] == 0 {
						t.Fatalf("no task of revision 2 on sw2 to drain: %v", placed)
					}
					f.startLoad()
					time.Sleep(2 * time.Second)
					if err := f.docker("node", "update", "--availability", "drain", "sw2"); err != nil {
						t.Fatal(err)
					}
					f.waitRunningOff("2", drained, time.Minute)
					f.waitRouterUp(3, time.Minute)
					time.Sleep(2 * time.Second)
					if err := f.stopLoad("drain of sw2", "2.0.0"); err != nil {
						t.Fatal(err)
					}
				},
				Config:             f.config(f.v2, ""),
				PlanOnly:           true,
				ExpectNonEmptyPlan: false,
			},
			{
				// Stop sw3's engine: Swarm starts its task on another node and the
				// router follows; the plan is clean once the replicas run again.
				PreConfig: func() {
					if err := f.docker("node", "update", "--availability", "active", "sw2"); err != nil {
						t.Fatal(err)
					}
					lost := f.nodeID(3)
					b, err := os.ReadFile(filepath.Join(f.dir, "sw3", "docker.pid"))
					if err != nil {
						t.Fatal(err)
					}
					pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
					f.startLoad()
					started := time.Now()
					if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
						t.Fatal(err)
					}
					t.Logf("stopped the engine of sw3 (pid %d)", pid)
					f.waitRunningOff("2", lost, 2*time.Minute)
					f.waitRouterUp(3, time.Minute)
					// Measured, not asserted: requests the router had sent to the lost
					// node's task before its checks took it out.
					k, n := f.load.Stop(), f.loadNew.Stop()
					f.load, f.loadNew = nil, nil
					t.Logf("load while sw3 was lost (%s until 3 replicas ran again and the router had them UP): keep-alive %s; new connections %s; failures %v %v",
						time.Since(started).Round(time.Second), k, n, k.Failures, n.Failures)
				},
				Config:             f.config(f.v2, ""),
				PlanOnly:           true,
				ExpectNonEmptyPlan: false,
			},
			{
				// The service scaled to 1 by hand: the plan shows it; the apply
				// restores the 3 replicas on the nodes left, under load.
				PreConfig: func() {
					if err := f.docker("service", "scale", "--detach", naming.SwarmServiceName(f.env, "web", naming.TrackStable, 2)+"=1"); err != nil {
						t.Fatal(err)
					}
					time.Sleep(2 * time.Second)
				},
				Config:             f.config(f.v2, ""),
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
			},
			{
				PreConfig: f.startLoad,
				Config:    f.config(f.v2, ""),
				Check: resource.ComposeTestCheckFunc(
					f.checkLoad("repair of a service scaled by hand", "2.0.0"), f.checkServes("2.0.0"), f.checkServices("2", 3)),
			},
			{
				Config:             f.config(f.v2, ""),
				PlanOnly:           true,
				ExpectNonEmptyPlan: false,
			},
		},
	})
}
