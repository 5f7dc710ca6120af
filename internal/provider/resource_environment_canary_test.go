package provider

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/releasekit/terraform-provider-release/internal/loadgen"
	"github.com/releasekit/terraform-provider-release/internal/naming"
	"github.com/releasekit/terraform-provider-release/internal/router"
)

// canaryFixture is an environment released through a canary, judged on the
// router's counters and on the application's error types in Prometheus.
type canaryFixture struct {
	*envFixture
	prometheus string
	report     string
	// users follows simulated users with cookies: one answered by the
	// canary must stay on it.
	users *loadgen.Run
}

func newCanaryFixture(t *testing.T) *canaryFixture {
	f := &canaryFixture{envFixture: newEnvFixture(t), prometheus: testStackEnv(t, "RELEASE_TEST_PROMETHEUS_URL")}
	f.report = filepath.Join(t.TempDir(), "canary-report.md")
	return f
}

// The schedule: 18s at 20%, 9s at 30%, 9s at 50%, analysed every 3s. The
// first step carries about 700 canary requests under the test load: early
// looks spend little of the false-alarm budget, and with 10% for 18s a 5%
// canary sometimes got through to step 2 (seen once in CI).
const canarySchedule = "20% for 18s → 30% for 9s → 50% for 9s → 100% to the canary and an equal baseline; analysed every 3s (at least 40 requests a side); 36s to 54s"

// config renders the router, the canary policy and the environment serving
// digest; extra goes into the environment.
func (f *canaryFixture) config(digest, extra string) string {
	cfg := f.envFixture.config(digest, "canary = release_canary.c.id\n  "+extra) + fmt.Sprintf(`
resource "release_canary" "c" {
  steps = [{ weight = 20, pause = "18s" }, { weight = 30, pause = "9s" }, { weight = 50, pause = "9s" }]
  analysis = {
    interval           = "3s"
    min_requests       = 40
    max_error_rate     = 0.01
    failure_limit      = 1
    inconclusive_limit = 2
    must_catch         = 0.1
    prometheus         = { url = %q }
    errors             = { metric = "app_errors_total", label = "type", new_type_intervals = 2 }
  }
  on_interrupt = "resume"
  report_path  = %q
}
`, f.prometheus, f.report)
	if f.swarm {
		// Prometheus, on the host, cannot reach tasks on an overlay network:
		// on a swarm the canary is judged on the router's counts alone.
		cfg = regexp.MustCompile(`(?m)^    (prometheus|errors) .*\n`).ReplaceAllString(cfg, "")
	}
	return cfg
}

func (f *canaryFixture) startUsers() {
	f.users = loadgen.Start(loadgen.Config{URL: f.url(), Rate: 40, Workers: 8, KeepAlive: true, UserRequests: 25, Watch: "2.0.0", MaxDuration: 3 * time.Minute})
}

// stopCanaryLoad checks the load of a canary step: no request failed but
// those the canary's version injected itself (answers of the application
// that name its version), and no user the canary answered was moved back.
func (f *canaryFixture) stopCanaryLoad(step, injectedBy string, wantVersions ...string) error {
	if err := f.stopLoadAllowing(step, injectedBy, wantVersions...); err != nil {
		return err
	}
	if f.users != nil {
		u := f.users.Stop()
		f.users = nil
		f.t.Logf("users during %s: %d users, %s; %d left the canary", step, u.Users, u, u.LeftWatched)
		if u.LeftWatched > 0 {
			return fmt.Errorf("%s: %d users answered by the canary were later answered by another version", step, u.LeftWatched)
		}
		if u.Failed()-u.AppErrors[injectedBy] > 0 {
			return fmt.Errorf("%s: %d user requests failed: %v", step, u.Failed(), u.Failures)
		}
	}
	return nil
}

// checkOnly proves only the given revision runs: no canary or baseline container is left.
func (f *canaryFixture) checkOnly(revision string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		for _, c := range f.containers() {
			if naming.TrackOf(c.Labels) == naming.TrackBaseline {
				return fmt.Errorf("baseline container %s (%s) is left", c.Name, c.State)
			}
			if c.Running() && c.Labels[naming.LabelRevision] != revision {
				return fmt.Errorf("container %s of revision %s still runs", c.Name, c.Labels[naming.LabelRevision])
			}
		}
		return nil
	}
}

func (f *canaryFixture) checkReport(patterns ...string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		b, err := os.ReadFile(f.report)
		if err != nil {
			return fmt.Errorf("report_path: %w", err)
		}
		if m := regexp.MustCompile(`Every user was back on revision \d+ \S+ after the decision`).Find(b); m != nil {
			f.t.Logf("report: %s", m)
		}
		for _, p := range patterns {
			if !regexp.MustCompile(p).Match(b) {
				return fmt.Errorf("the report does not match %q:\n%s", p, b)
			}
		}
		return nil
	}
}

// A good v2 goes through every step under constant load and is promoted;
// users the canary answered stay on it; the plan shows the schedule.
func TestAccEnvironmentCanary_goodVersionPromotes(t *testing.T) {
	f := newCanaryFixture(t)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             f.checkDestroyed,
		Steps: []resource.TestStep{
			{
				Config: f.config(f.v1, ""),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("release_environment.web", tfjsonpath.New("rollout"), knownvalue.StringExact("hard switch (first release)")),
				},
				Check: f.checkServes("1.0.0"),
			},
			{
				PreConfig: func() { f.startLoad(); f.startUsers() },
				Config:    f.config(f.v2, ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					expectDigestChange{"release_environment.web", f.v1, f.v2},
					plancheck.ExpectKnownValue("release_environment.web", tfjsonpath.New("rollout"), knownvalue.StringExact("canary: "+canarySchedule)),
				}},
				Check: resource.ComposeTestCheckFunc(
					func(*terraform.State) error { return f.stopCanaryLoad("canary of good v2", "", "1.0.0", "2.0.0") },
					f.checkServes("2.0.0"),
					f.checkOnly("2"),
					f.checkReport(`promoted`, `\| 3 \| \d+ \| error rate \|`, `\| pass \|`),
				),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("release_environment.web", tfjsonpath.New("revision"), knownvalue.Int64Exact(2)),
					statecheck.ExpectKnownValue("release_environment.web", tfjsonpath.New("verified").AtMapKey("digests"),
						knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact(f.v2), knownvalue.StringExact(f.v1)})),
				},
			},
			{
				Config:             f.config(f.v2, ""),
				PlanOnly:           true,
				ExpectNonEmptyPlan: false,
			},
			{
				// Reverting is a rollback to the retained revision 1: a hard switch, no canary.
				PreConfig: f.startLoad,
				Config:    f.config(f.v1, ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					expectDigestChange{"release_environment.web", f.v2, f.v1},
					plancheck.ExpectKnownValue("release_environment.web", tfjsonpath.New("rollout"),
						knownvalue.StringRegexp(regexp.MustCompile(`^rollback to revision 1: a hard switch to its retained containers$`))),
				}},
				Check: resource.ComposeTestCheckFunc(f.checkLoad("rollback to v1", "1.0.0"), f.checkServes("1.0.0"), f.checkOnly("1")),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("release_environment.web", tfjsonpath.New("revision"), knownvalue.Int64Exact(1)),
				},
			},
		},
	})
}

// Three bad canaries, each under constant load, each aborted with every user
// back on v1 and the state left on v1: 5% errors (against a baseline with
// none) at the first step, a new error type, and a canary that gets no
// traffic (every user pinned to v1), which stays inconclusive.
func TestAccEnvironmentCanary_badVersionsAbort(t *testing.T) {
	f := newCanaryFixture(t)
	pinned := (*loadgen.Run)(nil)
	stopPinned := func() error {
		s := pinned.Stop()
		t.Logf("pinned load: %s", s)
		if s.Failed() > 0 || s.ByVersion["2.0.0"] > 0 {
			return fmt.Errorf("pinned load: %d failed, %d answered by the canary", s.Failed(), s.ByVersion["2.0.0"])
		}
		return nil
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             f.checkDestroyed,
		Steps: []resource.TestStep{
			{
				Config: f.config(f.v1, ""),
				Check:  f.checkServes("1.0.0"),
			},
			{
				PreConfig:   f.startLoad,
				Config:      f.config(f.v2, `env = { ERROR_RATE = "0.05" }`),
				ExpectError: expectDiag(`(?s)Canary Aborted.*aborted at step [12] of 3 \([23]0% of traffic\).*error rate.*Every user was back on revision 1 [0-9.]+m?s after the decision.*\| check \| canary \| baseline \|`),
			},
			{
				// The state is still on v1: the plan is empty.
				PreConfig: func() {
					if err := f.stopCanaryLoad("canary with 5% errors", "2.0.0", "1.0.0"); err != nil {
						t.Fatal(err)
					}
				},
				Config:             f.config(f.v1, ""),
				PlanOnly:           true,
				ExpectNonEmptyPlan: false,
			},
			{
				Config: f.config(f.v1, ""),
				Check: resource.ComposeTestCheckFunc(
					f.checkServes("1.0.0"),
					f.checkOnly("1"),
					f.checkReport(`aborted`, `\| [12] \| \d+ \| (max )?error rate \| [0-9.]+% \(\d+/\d+\) \| [^|]+ \| [^|]+ \| FAIL \|`),
				),
			},
			{
				PreConfig:   f.startLoad,
				Config:      f.config(f.v2, `env = { ERROR_TYPES = "payment_declined=0.2" }`),
				ExpectError: expectDiag(`(?s)Canary Aborted.*new error type payment_declined.*Every user was back on revision 1 [0-9.]+m?s after the decision`),
			},
			{
				PreConfig: func() {
					if err := f.stopCanaryLoad("canary with a new error type", "", "1.0.0"); err != nil {
						t.Fatal(err)
					}
				},
				Config: f.config(f.v1, ""),
				Check:  resource.ComposeTestCheckFunc(f.checkServes("1.0.0"), f.checkOnly("1")),
			},
			{
				PreConfig: func() {
					pinned = loadgen.Start(loadgen.Config{URL: f.url(), Rate: 100, Workers: 4, KeepAlive: true, Cookie: f.pinCookie("r1-1"), MaxDuration: 3 * time.Minute})
				},
				Config:      f.config(f.v2, ""),
				ExpectError: expectDiag(`(?s)Canary Aborted.*aborted at step 1 of 3.*still inconclusive after 2 more analyses.*never promoted`),
			},
			{
				// A Prometheus password that is not set where Terraform runs: the canary never starts.
				PreConfig: func() {
					if err := stopPinned(); err != nil {
						t.Fatal(err)
					}
				},
				Config: strings.Replace(f.config(f.v2, ""), fmt.Sprintf("prometheus         = { url = %q }", f.prometheus),
					fmt.Sprintf("prometheus         = { url = %q, username = \"ci\", password_env = \"RELEASE_TEST_UNSET_PASSWORD\" }", f.prometheus), 1),
				ExpectError: expectDiag(`(?s)Canary Metrics Unavailable.*RELEASE_TEST_UNSET_PASSWORD.*No traffic reached it.*apply again`),
			},
			{
				Config: f.config(f.v1, ""),
				Check:  resource.ComposeTestCheckFunc(f.checkServes("1.0.0"), f.checkOnly("1"), f.checkReport(`inconclusive`, `no requests`)),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("release_environment.web", tfjsonpath.New("verified").AtMapKey("digests"),
						knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact(f.v1)})),
				},
			},
		},
	})
}

// terraform is killed (SIGKILL, with its provider, as a CI runner kills a
// job) mid-canary: traffic stays on a healthy split, the next plan shows the
// environment mid-rollout, and the next apply resumes the canary and
// converges, leaving no orphaned container. Constant load runs throughout.
func TestAccEnvironmentCanary_killedApplyConverges(t *testing.T) {
	testKilledCanaryConverges(t, newCanaryFixture(t))
}

func testKilledCanaryConverges(t *testing.T, f *canaryFixture) {
	w := newTFWorkspace(t, f.config(f.v1, ""))
	w.destroyOnCleanup()
	w.mustRun("apply", "-auto-approve")

	f.startLoad()
	w.write(f.config(f.v2, ""))
	cmd := exec.Command(terraformPath(), "apply", "-no-color", "-auto-approve")
	cmd.Dir, cmd.Env = w.dir, w.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until the split gives the canary traffic, then into the second step.
	ctx := context.Background()
	routerID := ""
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if c, err := f.engine.Inspect(ctx, router.ContainerName(f.router)); err == nil {
			routerID = c.ID
			files, _ := f.engine.ReadDir(ctx, routerID, router.ConfigDir)
			if strings.Contains(string(files[router.RouteFileName(f.env, "web")]), "server c2-1") {
				break
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(14 * time.Second)
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	t.Logf("killed terraform apply; its output:\n%s", out.String())

	files, err := f.engine.ReadDir(ctx, routerID, router.ConfigDir)
	if err != nil {
		t.Fatal(err)
	}
	route := string(files[router.RouteFileName(f.env, "web")])
	if !strings.Contains(route, "server c2-1") || !strings.Contains(route, "server r1-1") {
		t.Fatalf("after the kill the route is not a split of v1 and the canary:\n%s", route)
	}
	for _, c := range f.containers() {
		if !c.Running() {
			t.Errorf("after the kill, %s is %s", c.Name, c.State)
		}
	}

	plan, code := w.run("plan", "-detailed-exitcode")
	if code != 2 || !regexp.MustCompile(`a canary of revision 2 still gets \d+% of traffic: an apply was interrupted`).MatchString(plan) {
		t.Fatalf("the plan after the kill (exit %d) does not show the environment mid-rollout:\n%s", code, plan)
	}
	t.Logf("plan after the kill:\n%s", plan)

	w.mustRun("apply", "-auto-approve")
	if err := f.stopCanaryLoad("killed canary, then resumed", "", "1.0.0", "2.0.0"); err != nil {
		t.Error(err)
	}
	if err := f.checkServes("2.0.0")(nil); err != nil {
		t.Error(err)
	}
	if err := f.checkOnly("2")(nil); err != nil {
		t.Error(err)
	}
	if out, code := w.run("plan", "-detailed-exitcode"); code != 0 {
		t.Errorf("the plan after the resumed apply is not empty (exit %d):\n%s", code, out)
	}
}

// canary_policy = release_canary.<name>.policy: the plan shows the policy's
// steps and analysis as attributes, never an encoded id, and a change of a
// step shows as that step's change; the canary runs and promotes as with
// canary = release_canary.<name>.id.
func TestAccEnvironmentCanary_policyAsAttributes(t *testing.T) {
	f := newCanaryFixture(t)
	config := func(digest string, firstWeight int) string {
		c := strings.Replace(f.config(digest, ""), "canary = release_canary.c.id", "canary_policy = release_canary.c.policy", 1)
		return strings.Replace(c, "{ weight = 20, pause = \"18s\" }", fmt.Sprintf("{ weight = %d, pause = \"18s\" }", firstWeight), 1)
	}
	w := newTFWorkspace(t, config(f.v1, 20))
	w.destroyOnCleanup()
	encoded := regexp.MustCompile(`rc1\.[A-Za-z0-9_-]{20,}`)
	// The environment's part of a plan (release_canary's own id is still the encoded policy).
	environmentPart := func(plan string) string {
		i := strings.Index(plan, "# release_environment.web ")
		if i < 0 {
			return ""
		}
		rest := plan[i:]
		if j := strings.Index(rest[1:], "\n  # "); j >= 0 {
			rest = rest[:j+1]
		} else if j := strings.Index(rest, "\nPlan:"); j >= 0 {
			rest = rest[:j]
		}
		return rest
	}

	plan := environmentPart(w.mustRun("plan"))
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?s)\+ canary_policy\s+= \{.*\+ steps\s+= \[.*\+ pause\s+= "18s".*\+ weight\s+= 20`),
		regexp.MustCompile(`(?s)\+ canary_policy\s+= \{.*\+ analysis\s+= \{.*\+ max_error_rate\s+= 0\.01`),
	} {
		if !want.MatchString(plan) {
			t.Errorf("the create plan does not show %s:\n%s", want, plan)
		}
	}
	if m := encoded.FindString(plan); m != "" {
		t.Errorf("the create plan shows an encoded policy %q", m)
	}
	w.mustRun("apply", "-auto-approve")

	// A step changed in the policy: the environment's plan shows that step.
	w.write(config(f.v1, 25))
	plan, code := w.planCode()
	plan = environmentPart(plan)
	if code != 2 || !regexp.MustCompile(`~ weight\s+= 20 -> 25`).MatchString(plan) || encoded.MatchString(plan) {
		t.Errorf("the plan of a changed step (exit %d) does not show it as an attribute:\n%s", code, plan)
	}
	w.mustRun("apply", "-auto-approve")

	// The canary of v2 with the policy as attributes: analysed and promoted.
	f.startLoad()
	w.write(config(f.v2, 25))
	plan, _ = w.planCode()
	if !strings.Contains(plan, "canary: 25% for 18s") || encoded.MatchString(environmentPart(plan)) {
		t.Errorf("the plan of v2 does not show the canary's schedule:\n%s", plan)
	}
	w.mustRun("apply", "-auto-approve")
	if err := f.stopLoad("canary of v2 with canary_policy", "1.0.0", "2.0.0"); err != nil {
		t.Error(err)
	}
	if err := f.checkServes("2.0.0")(nil); err != nil {
		t.Error(err)
	}
	if report, err := os.ReadFile(f.report); err != nil || !strings.Contains(string(report), "promoted") {
		t.Errorf("the canary report (%v):\n%s", err, report)
	}
}

// A healthy canary with too little traffic for its test to catch the
// default must_catch (3× the baseline's rate, or +1 point) is not promoted:
// it ends "underpowered" after its last step, saying about how many
// requests it needed, every user back on v1.
func TestAccEnvironmentCanary_lowTrafficIsUnderpowered(t *testing.T) {
	f := newCanaryFixture(t)
	defaultMustCatch := func(digest string) string {
		return strings.Replace(f.config(digest, ""), "    must_catch         = 0.1\n", "", 1)
	}
	var light *loadgen.Run
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             f.checkDestroyed,
		Steps: []resource.TestStep{
			{
				Config: defaultMustCatch(f.v1),
				Check:  f.checkServes("1.0.0"),
			},
			{
				// 20 requests a second: about 70 a side in the first step, enough
				// for min_requests (40), and about 220 by the end of the schedule:
				// far too few to catch 3× a rate below 1%.
				PreConfig: func() {
					light = loadgen.Start(loadgen.Config{URL: f.url(), Rate: 20, Workers: 2, KeepAlive: true, MaxDuration: 2 * time.Minute})
				},
				Config:      defaultMustCatch(f.v2),
				ExpectError: expectDiag(`(?s)Canary Aborted.*aborted at step 3 of 3.*underpowered: \d+% power to catch a [0-9.]+% 5xx rate against [0-9.]+%; about \d+ more canary requests needed.*No check failed.*needed about \d+ more canary requests`),
			},
			{
				PreConfig: func() {
					s := light.Stop()
					t.Logf("light load: %s", s)
					if s.Failed() > 0 || s.ByVersion["2.0.0"] == 0 {
						t.Fatalf("light load: %d failed, %d answered by the canary (want some)", s.Failed(), s.ByVersion["2.0.0"])
					}
				},
				Config: defaultMustCatch(f.v1),
				Check:  resource.ComposeTestCheckFunc(f.checkServes("1.0.0"), f.checkOnly("1"), f.checkReport(`aborted`, `\| power \| \d+% \|`, `underpowered`)),
			},
		},
	})
}
