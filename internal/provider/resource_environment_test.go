package provider

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/acctest"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/releasekit/terraform-provider-release/internal/docker"
	"github.com/releasekit/terraform-provider-release/internal/loadgen"
	"github.com/releasekit/terraform-provider-release/internal/naming"
	"github.com/releasekit/terraform-provider-release/internal/router"
)

// envFixture is one router and one environment with names of their own, so
// tests never touch each other's containers.
type envFixture struct {
	t       *testing.T
	router  string
	env     string
	port    int
	repo    string
	v1, v2  string
	haproxy string
	engine  *docker.Engine
	// Two load runs: one reusing connections, one opening a new one per request.
	load, loadNew *loadgen.Run
	// swarm runs the environment's replicas as Swarm services (swarm = {}).
	swarm bool
	// address is where the router's port answers ("": 127.0.0.1), and
	// dockerHost the provider's docker_host ("": DOCKER_HOST).
	address, dockerHost string
}

func newEnvFixture(t *testing.T) *envFixture {
	testAccPreCheck(t)
	f := &envFixture{
		t:       t,
		router:  "acc-" + acctest.RandStringFromCharSet(6, "abcdefghijklmnopqrstuvwxyz"),
		env:     "e" + acctest.RandStringFromCharSet(6, "abcdefghijklmnopqrstuvwxyz"),
		port:    freePort(t),
		repo:    testStackEnv(t, "RELEASE_TEST_IMAGE_REPOSITORY"),
		v1:      testStackEnv(t, "RELEASE_TEST_IMAGE_V1_DIGEST"),
		v2:      testStackEnv(t, "RELEASE_TEST_IMAGE_V2_DIGEST"),
		haproxy: testStackEnv(t, "RELEASE_TEST_HAPROXY_IMAGE"),
		engine:  docker.NewEngine(docker.NewConnector(docker.ConfigFromEnv())),
	}
	return f
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// config renders the router and one environment serving digest with extra attributes.
func (f *envFixture) config(digest, extra string) string {
	return f.providerBlock() + fmt.Sprintf(`
resource "release_router" "edge" {
  name  = %[1]q
  image = %[2]q
  ports = [{ internal = 80, external = %[3]d }]
}

resource "release_environment" "web" {
  name     = %[4]q
  service  = "web"
  image    = "%[5]s@%[6]s"
  replicas = 2
  router   = release_router.edge.id
  health_check = { interval = "500ms", start_timeout = "20s" }
  stop_timeout = "5s"
  %[7]s
  %[8]s
}
`, f.router, f.haproxy, f.port, f.env, f.repo, digest, extra, f.swarmAttribute())
}

func (f *envFixture) providerBlock() string {
	if f.dockerHost == "" {
		return ""
	}
	return fmt.Sprintf("provider \"release\" {\n  docker_host = %q\n}\n", f.dockerHost)
}

func (f *envFixture) swarmAttribute() string {
	if f.swarm {
		return "swarm = {}"
	}
	return ""
}

func (f *envFixture) url() string {
	address := f.address
	if address == "" {
		address = "127.0.0.1"
	}
	return fmt.Sprintf("http://%s:%d/", address, f.port)
}

// pinCookie is the Cookie header that pins a user to one server of the
// route (by its name in the router, such as r1-1) once the route is sticky:
// the router's dynamic cookie for the server's address in the route file.
func (f *envFixture) pinCookie(server string) string {
	f.t.Helper()
	files, err := f.engine.ReadDir(context.Background(), router.ContainerName(f.router), router.ConfigDir)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, s := range router.ParseRouteServers(files[router.RouteFileName(f.env, "web")]) {
		if s.Name == server {
			value, err := router.ServerCookie(f.env, "web", s.Address)
			if err != nil {
				f.t.Fatal(err)
			}
			return router.CookieName(f.env, "web") + "=" + value
		}
	}
	f.t.Fatalf("the route of %s has no server %s", f.env, server)
	return ""
}

// startLoad sends constant traffic through the router during a switch.
func (f *envFixture) startLoad() {
	f.load = loadgen.Start(loadgen.Config{URL: f.url(), Rate: 150, Workers: 6, KeepAlive: true, MaxDuration: 3 * time.Minute})
	f.loadNew = loadgen.Start(loadgen.Config{URL: f.url(), Rate: 50, Workers: 2, KeepAlive: false, MaxDuration: 3 * time.Minute})
}

// stopLoad prints the totals and fails on any failed request.
func (f *envFixture) stopLoad(step string, wantVersions ...string) error {
	return f.stopLoadAllowing(step, "", wantVersions...)
}

// stopLoadAllowing is stopLoad that forgives the errors a canary's version
// injects itself (non-2xx answers of the application naming that version);
// any other failure, a router's 503 or a dropped connection, still fails.
func (f *envFixture) stopLoadAllowing(step, injectedBy string, wantVersions ...string) error {
	if f.load == nil {
		return fmt.Errorf("%s: no load was running", step)
	}
	s := f.load.Stop()
	n := f.loadNew.Stop()
	f.load, f.loadNew = nil, nil
	f.t.Logf("load during %s, keep-alive: %s, app errors %v", step, s, s.AppErrors)
	f.t.Logf("load during %s, new connection per request: %s, app errors %v", step, n, n.AppErrors)
	s.Requests += n.Requests
	s.OK += n.OK
	s.Non2xx += n.Non2xx
	s.Errors += n.Errors
	s.Failures = append(s.Failures, n.Failures...)
	for v, c := range n.ByVersion {
		s.ByVersion[v] += c
	}
	injected := 0
	if injectedBy != "" {
		injected = s.AppErrors[injectedBy] + n.AppErrors[injectedBy]
	}
	if s.Requests < 50 {
		return fmt.Errorf("%s: only %d requests were sent", step, s.Requests)
	}
	if s.Failed()-injected > 0 {
		return fmt.Errorf("%s: %d of %d requests failed besides %d errors injected by %q (%d non-2xx, %d connection errors): %v",
			step, s.Failed()-injected, s.Requests, injected, injectedBy, s.Non2xx, s.Errors, s.Failures)
	}
	for _, v := range wantVersions {
		if s.ByVersion[v] == 0 {
			return fmt.Errorf("%s: no request was answered by version %s: %s", step, v, s)
		}
	}
	return nil
}

func (f *envFixture) checkServes(version string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		for i := 0; i < 6; i++ { // two replicas: several answers
			resp, err := http.Get(f.url())
			if err != nil {
				return err
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(body), "version="+version+" ") {
				return fmt.Errorf("GET %s: HTTP %d %q, want version %s", f.url(), resp.StatusCode, body, version)
			}
		}
		return nil
	}
}

func (f *envFixture) checkLoad(step string, versions ...string) resource.TestCheckFunc {
	return func(*terraform.State) error { return f.stopLoad(step, versions...) }
}

// containers are the environment's application containers.
func (f *envFixture) containers() []docker.Container {
	f.t.Helper()
	cs, err := f.engine.List(context.Background(), map[string]string{naming.LabelEnvironment: f.env, naming.LabelKind: string(naming.KindApp)})
	if err != nil {
		f.t.Fatal(err)
	}
	return cs
}

// everything is every object of the environment: containers and records.
func (f *envFixture) everything() []docker.Container {
	f.t.Helper()
	cs, err := f.engine.List(context.Background(), map[string]string{naming.LabelEnvironment: f.env})
	if err != nil {
		f.t.Fatal(err)
	}
	return cs
}

// checkDestroyed proves destroy removed this environment's containers, route,
// network and router, and nothing else.
func (f *envFixture) checkDestroyed(*terraform.State) error {
	if cs := f.everything(); len(cs) > 0 {
		return fmt.Errorf("%d containers of %s remain after destroy", len(cs), f.env)
	}
	for _, network := range []string{naming.NetworkName(f.env, "web"), naming.OverlayNetworkName(f.env, "web")} {
		if _, found, _ := f.engine.NetworkLabels(context.Background(), network); found {
			return fmt.Errorf("the network %s of %s remains after destroy", network, f.env)
		}
	}
	if _, err := f.engine.Inspect(context.Background(), router.ContainerName(f.router)); !docker.IsNotFound(err) {
		return fmt.Errorf("the router container remains after destroy (%v)", err)
	}
	return nil
}

// Deploy v1, switch to v2, revert to v1 reusing its retained containers, go
// to v2 again, and reject an unhealthy v3 while v2 keeps serving. Constant
// load runs through the router during every switch and not one request fails.
func TestAccEnvironment_switchRollbackAndUnhealthy(t *testing.T) {
	f := newEnvFixture(t)
	var v1IDs []string
	rememberV1 := func(*terraform.State) error {
		for _, c := range f.containers() {
			if c.Labels[naming.LabelRevision] == "1" {
				v1IDs = append(v1IDs, c.ID)
			}
		}
		if len(v1IDs) != 2 {
			return fmt.Errorf("revision 1 has %d containers, want 2", len(v1IDs))
		}
		return nil
	}
	reusedV1 := func(*terraform.State) error {
		running := map[string]bool{}
		for _, c := range f.containers() {
			if c.Running() {
				running[c.ID] = true
			}
		}
		for _, id := range v1IDs {
			if !running[id] {
				return fmt.Errorf("the rollback did not reuse the retained container %s", id[:12])
			}
		}
		return nil
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             f.checkDestroyed,
		Steps: []resource.TestStep{
			{
				Config: f.config(f.v1, ""),
				Check:  resource.ComposeTestCheckFunc(f.checkServes("1.0.0"), rememberV1),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("release_environment.web", tfjsonpath.New("revision"), knownvalue.Int64Exact(1)),
					statecheck.ExpectKnownValue("release_environment.web", tfjsonpath.New("digest"), knownvalue.StringExact(f.v1)),
				},
			},
			{
				PreConfig: f.startLoad,
				Config:    f.config(f.v2, ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("release_environment.web", plancheck.ResourceActionUpdate),
					plancheck.ExpectKnownValue("release_environment.web", tfjsonpath.New("digest"), knownvalue.StringExact(f.v2)),
				}},
				Check: resource.ComposeTestCheckFunc(f.checkLoad("switch v1 -> v2", "1.0.0", "2.0.0"), f.checkServes("2.0.0")),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("release_environment.web", tfjsonpath.New("revision"), knownvalue.Int64Exact(2)),
				},
			},
			{
				PreConfig: f.startLoad,
				Config:    f.config(f.v1, ""),
				Check:     resource.ComposeTestCheckFunc(f.checkLoad("rollback v2 -> v1", "1.0.0", "2.0.0"), f.checkServes("1.0.0"), reusedV1),
				ConfigStateChecks: []statecheck.StateCheck{
					// The retained revision serves again: a rollback, not a new release.
					statecheck.ExpectKnownValue("release_environment.web", tfjsonpath.New("revision"), knownvalue.Int64Exact(1)),
					statecheck.ExpectKnownValue("release_environment.web", tfjsonpath.New("history").AtSliceIndex(0).AtMapKey("revision"), knownvalue.Int64Exact(2)),
				},
			},
			{
				PreConfig: f.startLoad,
				Config:    f.config(f.v2, ""),
				Check:     resource.ComposeTestCheckFunc(f.checkLoad("forward again v1 -> v2", "1.0.0", "2.0.0"), f.checkServes("2.0.0")),
			},
			{
				PreConfig:   f.startLoad,
				Config:      f.config(f.v2, `env = { HEALTH = "fail" }`),
				ExpectError: expectDiag(`(?s)New Containers Not Healthy.*Traffic was never moved.*Last log lines of ` + f.env + `-web-r3-1.*health_fail=true`),
			},
			{
				// The failed apply left v2 serving, and the state on v2: the plan is empty.
				PreConfig: func() {
					if err := f.stopLoad("rejected unhealthy v3", "2.0.0"); err != nil {
						t.Fatal(err)
					}
				},
				Config: f.config(f.v2, ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan(),
				}},
				Check: f.checkServes("2.0.0"),
			},
		},
	})
}

// Containers removed by hand and a route lost by the router show in the next
// plan and apply repairs them; a router restart keeps the split; import and
// the data source read it all back from the host.
func TestAccEnvironment_driftImportDataSource(t *testing.T) {
	f := newEnvFixture(t)
	ctx := context.Background()
	removeOne := func() {
		for _, c := range f.containers() {
			if c.Running() {
				if err := f.engine.Remove(ctx, c.ID); err != nil {
					t.Fatal(err)
				}
				return
			}
		}
	}
	wipeRoute := func() {
		id := router.ContainerName(f.router)
		if err := f.engine.CopyFiles(ctx, id, router.ConfigDir, []docker.File{{Path: router.RouteFileName(f.env, "web"), Content: []byte("")}}); err != nil {
			t.Fatal(err)
		}
		if err := f.engine.Signal(ctx, id, "SIGUSR2"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		if resp, err := http.Get(f.url()); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				t.Fatal("the route was wiped but the router still serves")
			}
		}
	}
	restartRouter := func() {
		id := router.ContainerName(f.router)
		if err := f.engine.Stop(ctx, id, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		if err := f.engine.Start(ctx, id); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1500 * time.Millisecond)
	}
	driftPlanned := resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
		plancheck.ExpectResourceAction("release_environment.web", plancheck.ResourceActionUpdate),
	}}
	dataSource := fmt.Sprintf(`
data "release_environment" "read" {
  name       = %q
  service    = "web"
  depends_on = [release_environment.web]
}
`, f.env)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             f.checkDestroyed,
		Steps: []resource.TestStep{
			{Config: f.config(f.v1, ""), Check: f.checkServes("1.0.0")},
			{
				PreConfig:        removeOne,
				Config:           f.config(f.v1, ""),
				ConfigPlanChecks: driftPlanned,
				Check:            f.checkServes("1.0.0"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("release_environment.web", tfjsonpath.New("drift"), knownvalue.Null()),
				},
			},
			{
				PreConfig:        wipeRoute,
				Config:           f.config(f.v1, ""),
				ConfigPlanChecks: driftPlanned,
				Check:            f.checkServes("1.0.0"),
			},
			{
				PreConfig: restartRouter,
				Config:    f.config(f.v1, ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan(),
				}},
				Check: f.checkServes("1.0.0"),
			},
			{
				ResourceName:      "release_environment.web",
				ImportState:       true,
				ImportStateId:     f.env + "/web",
				ImportStateVerify: true,
				// Settings the host does not record are taken from their defaults on import;
				// rollout describes the last plan, which an import has none of.
				ImportStateVerifyIgnore: []string{"replicas", "health_check", "stop_timeout", "timeouts", "env", "command", "rollout"},
			},
			{
				ResourceName:      "release_router.edge",
				ImportState:       true,
				ImportStateId:     f.router,
				ImportStateVerify: true,
			},
			{
				// An import block with identity = { name } plans a no-op import.
				ResourceName:    "release_router.edge",
				ImportState:     true,
				ImportStateKind: resource.ImportBlockWithResourceIdentity,
			},
			{
				Config: f.config(f.v1, "") + dataSource,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectIdentity("release_environment.web", map[string]knownvalue.Check{
						"name": knownvalue.StringExact(f.env), "service": knownvalue.StringExact("web"),
					}),
					statecheck.ExpectIdentity("release_router.edge", map[string]knownvalue.Check{"name": knownvalue.StringExact(f.router)}),
					statecheck.ExpectKnownValue("data.release_environment.read", tfjsonpath.New("digest"), knownvalue.StringExact(f.v1)),
					statecheck.ExpectKnownValue("data.release_environment.read", tfjsonpath.New("image"), knownvalue.StringExact(f.repo+"@"+f.v1)),
					statecheck.ExpectKnownValue("data.release_environment.read", tfjsonpath.New("running"), knownvalue.Int64Exact(2)),
					statecheck.ExpectKnownValue("data.release_environment.read", tfjsonpath.New("router"), knownvalue.StringExact(f.router)),
				},
			},
		},
	})
}

// An environment whose state was lost comes back with an import block that
// names it by identity (Terraform 1.12 and later): the plan says it imports
// and changes nothing on the host, and the environment keeps serving.
func TestAccEnvironment_importBlockWithIdentity(t *testing.T) {
	f := newEnvFixture(t)
	w := newTFWorkspace(t, f.config(f.v1, ""))
	w.destroyOnCleanup()
	w.mustRun("apply", "-auto-approve")
	w.mustRun("state", "rm", "release_environment.web")

	w.write(f.config(f.v1, "") + fmt.Sprintf(`
import {
  to       = release_environment.web
  identity = { name = %q, service = "web" }
}
`, f.env))
	plan := w.mustRun("plan")
	// Nothing created or destroyed: settings the host does not record
	// (replicas, health_check, stop_timeout) may show as in-place updates.
	if !regexp.MustCompile(`Plan: 1 to import, 0 to add, \d+ to change, 0 to destroy`).MatchString(plan) {
		t.Fatalf("the plan does not only import the environment:\n%s", plan)
	}
	apply := w.mustRun("apply", "-auto-approve")
	if !strings.Contains(apply, "1 imported") {
		t.Fatalf("the apply did not import the environment:\n%s", apply)
	}
	if err := f.checkServes("1.0.0")(nil); err != nil {
		t.Fatalf("after the import: %v", err)
	}
	show := w.mustRun("state", "show", "release_environment.web")
	if !strings.Contains(show, fmt.Sprintf("%q", f.env+"/web")) {
		t.Fatalf("the imported state does not hold the environment:\n%s", show)
	}
	// A wrong identity names what to import.
	w.write(f.config(f.v1, "") + `
import {
  to       = release_environment.other
  identity = { name = "no such env!", service = "web" }
}
resource "release_environment" "other" {
  name    = "other"
  service = "web"
  image   = release_environment.web.image
  router  = release_router.edge.id
}
`)
	out, code := w.run("plan")
	if code == 0 || !strings.Contains(out, "Invalid Import ID") || !strings.Contains(out, "name and service") {
		t.Fatalf("an invalid identity: exit %d, want the Invalid Import ID error:\n%s", code, out)
	}
}

// previousProvider is the provider before resource identity and before
// import read the listener from the route (the state format users have).
const previousProvider = "e35e332"

// A state the previous provider wrote (router, environment after a switch,
// image, canary policy) is planned by this one with no change, and its first
// refresh adds each resource's identity.
func TestAccEnvironment_stateFromThePreviousProviderUpgrades(t *testing.T) {
	f := newEnvFixture(t)
	config := func(digest string) string {
		return f.config(digest, "") + fmt.Sprintf(`
resource "release_image" "pin" {
  repository = %q
  digest     = %q
}

resource "release_canary" "c" {
  steps = [{ weight = 10, pause = "30s" }, { weight = 50, pause = "1m" }]
}
`, f.repo, f.v1)
	}
	w := newTFWorkspace(t, config(f.v1))
	w.useProvider(providerAt(t, previousProvider))
	w.destroyOnCleanup()
	w.mustRun("apply", "-auto-approve")
	w.write(config(f.v2))
	w.mustRun("apply", "-auto-approve")

	w.useProvider(cliProvider(t))
	if out, code := w.run("plan", "-detailed-exitcode"); code != 0 {
		t.Fatalf("this provider plans a change (exit %d) for the state the provider at %s wrote:\n%s", code, previousProvider, out)
	}
	w.mustRun("apply", "-refresh-only", "-auto-approve")
	identities := w.identities()
	want := map[string]map[string]any{
		"release_environment.web": {"name": f.env, "service": "web"},
		"release_router.edge":     {"name": f.router},
		"release_image.pin":       {"repository": f.repo, "digest": f.v1},
	}
	for address, id := range want {
		if got, ok := identities[address]; !ok || fmt.Sprint(got) != fmt.Sprint(id) {
			t.Errorf("%s has identity %v (in the state: %t) after the refresh, want %v", address, got, ok, id)
		}
	}
	if err := f.checkServes("2.0.0")(nil); err != nil {
		t.Error(err)
	}
	// And this provider releases from it.
	w.write(config(f.v1))
	w.mustRun("apply", "-auto-approve")
	if err := f.checkServes("1.0.0")(nil); err != nil {
		t.Error(err)
	}
}

// A state written by an older Terraform (the one on PATH, RELEASE_TEST_TERRAFORM_OLDER,
// without resource identity) after a release and a switch is planned by
// the current Terraform with no change, and its first refresh records each
// resource's identity.
func TestAccEnvironment_olderTerraformStateUpgrades(t *testing.T) {
	older := os.Getenv("RELEASE_TEST_TERRAFORM_OLDER")
	if older == "" {
		t.Skip("RELEASE_TEST_TERRAFORM_OLDER is not set: scripts/stack.sh up sets it to the Terraform on PATH")
	}
	f := newEnvFixture(t)
	w := newTFWorkspace(t, f.config(f.v1, ""))
	w.terraform = older
	w.destroyOnCleanup()
	version := w.mustRun("version")
	w.mustRun("apply", "-auto-approve")
	w.write(f.config(f.v2, ""))
	w.mustRun("apply", "-auto-approve")
	if err := f.checkServes("2.0.0")(nil); err != nil {
		t.Fatalf("after the switch with %s: %v", strings.SplitN(version, "\n", 2)[0], err)
	}

	w.terraform = ""
	if out, code := w.run("plan", "-detailed-exitcode"); code != 0 {
		t.Fatalf("the current Terraform plans a change (exit %d) for the state %s wrote:\n%s", code, strings.SplitN(version, "\n", 2)[0], out)
	}
	w.mustRun("apply", "-refresh-only", "-auto-approve")
	identities := w.identities()
	want := map[string]map[string]any{
		"release_environment.web": {"name": f.env, "service": "web"},
		"release_router.edge":     {"name": f.router},
	}
	for address, id := range want {
		if got, ok := identities[address]; !ok || fmt.Sprint(got) != fmt.Sprint(id) {
			t.Errorf("%s has identity %v (in the state: %t) after the refresh, want %v", address, got, ok, id)
		}
	}
	if err := f.checkServes("2.0.0")(nil); err != nil {
		t.Fatal(err)
	}
}

// A tag instead of a pinned digest, a bad name and an unknown listener are
// refused with errors that say what to write.
func TestAccEnvironment_planErrors(t *testing.T) {
	f := newEnvFixture(t)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{
				Config:      strings.Replace(f.config(f.v1, ""), f.repo+"@"+f.v1, f.repo+":1.0.0", 1),
				PlanOnly:    true,
				ExpectError: expectDiag(`(?s)Invalid pinned image reference.*not pinned to a digest.*release_image.<name>.ref`),
			},
			{
				Config:      strings.Replace(f.config(f.v1, ""), `name     = "`+f.env+`"`, `name     = "prod\nbackend x"`, 1),
				PlanOnly:    true,
				ExpectError: expectDiag(`(?s)Invalid Name.*lowercase letters, digits and dashes`),
			},
			{
				Config:      strings.Replace(f.config(f.v1, ""), `interval = "500ms"`, `path = "/healthz bad", interval = "500ms"`, 1),
				PlanOnly:    true,
				ExpectError: expectDiag(`(?s)Invalid Health Check Path`),
			},
			{
				Config:      f.config(f.v1, "listen_port = 8081"),
				ExpectError: expectDiag(`(?s)Router Has No Such Listener.*one of 80`),
			},
		},
	})
}

// Destroying one environment leaves another on the same router serving.
func TestAccEnvironment_destroyLeavesOthers(t *testing.T) {
	f := newEnvFixture(t)
	other := f.env + "-b"
	otherPort := freePort(t)
	both := strings.Replace(f.config(f.v1, ""), "ports = [{ internal = 80, external = "+fmt.Sprint(f.port)+" }]",
		fmt.Sprintf("ports = [{ internal = 80, external = %d }, { internal = 81, external = %d }]", f.port, otherPort), 1)
	otherEnv := fmt.Sprintf(`
resource "release_environment" "other" {
  name        = %q
  service     = "web"
  image       = "%s@%s"
  router      = release_router.edge.id
  listen_port = 81
}
`, other, f.repo, f.v2)
	otherServes := func(*terraform.State) error {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", otherPort))
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), "version=2.0.0") {
			return fmt.Errorf("the other environment answers %q", body)
		}
		return nil
	}
	firstGone := func(*terraform.State) error {
		if cs := f.containers(); len(cs) > 0 {
			for _, c := range cs {
				if c.Labels[naming.LabelEnvironment] == f.env {
					return fmt.Errorf("container %s of the destroyed environment remains", c.Name)
				}
			}
		}
		if resp, err := http.Get(f.url()); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return fmt.Errorf("the destroyed environment's listener still serves")
			}
		}
		return nil
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             f.checkDestroyed,
		Steps: []resource.TestStep{
			{Config: both + otherEnv, Check: resource.ComposeTestCheckFunc(f.checkServes("1.0.0"), otherServes)},
			{
				// Remove the first environment only.
				Config: strings.Split(both, `resource "release_environment" "web"`)[0] + otherEnv,
				Check:  resource.ComposeTestCheckFunc(firstGone, otherServes),
			},
		},
	})
}
