package provider

// Fault-injection acceptance tests: each one reproduces a failure mode a
// user would meet (a kill at the wrong moment, a slow health check, two
// applies at once, a canary that goes dark, ...) and asserts what the user
// must see instead. They run the real terraform CLI (tfWorkspace) so that
// Terraform and the provider can be killed as a CI runner kills a job.
//
// Where the provider honours RELEASE_FAILPOINT (internal/failpoint), a test
// stops the apply at the named step; until it does, the test emulates the
// state that kill would leave on the host. Set
// RELEASE_TEST_EMULATE_FAILPOINTS=1 to force the emulation.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/releasekit/terraform-provider-release/internal/docker"
	"github.com/releasekit/terraform-provider-release/internal/failpoint"
	"github.com/releasekit/terraform-provider-release/internal/naming"
	"github.com/releasekit/terraform-provider-release/internal/probe"
	"github.com/releasekit/terraform-provider-release/internal/router"
)

// ---------------------------------------------------------------------------
// Terraform in the background.

// syncBuffer collects a process's output while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// tfProc is a terraform command running in its own process group, so that
// it can be killed with its provider as a CI runner kills a job.
type tfProc struct {
	t     testing.TB
	args  []string
	cmd   *exec.Cmd
	out   *syncBuffer
	done  chan struct{}
	code  int
	began time.Time
	ended time.Time
}

// startTF starts terraform in the workspace with extra environment variables.
func (w *tfWorkspace) startTF(extraEnv []string, args ...string) *tfProc {
	w.t.Helper()
	cmd := exec.Command(terraformPath(), append(args[:1:1], append([]string{"-no-color"}, args[1:]...)...)...)
	cmd.Dir = w.dir
	cmd.Env = append(append([]string(nil), w.env...), extraEnv...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &tfProc{t: w.t, args: args, cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	p.began = time.Now()
	if err := cmd.Start(); err != nil {
		w.t.Fatalf("starting terraform %s: %v", strings.Join(args, " "), err)
	}
	go func() {
		err := cmd.Wait()
		p.code = 0
		if err != nil {
			p.code = -1
			if ee, ok := err.(*exec.ExitError); ok {
				p.code = ee.ExitCode()
			}
		}
		p.ended = time.Now()
		close(p.done)
	}()
	// Never leave a terraform behind a failed test.
	w.t.Cleanup(p.kill)
	return p
}

// runWith runs terraform to the end with extra environment variables.
func (w *tfWorkspace) runWith(extraEnv []string, args ...string) (string, int) {
	w.t.Helper()
	return w.startTF(extraEnv, args...).wait(30 * time.Minute)
}

func (p *tfProc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL to terraform's process group (terraform and its
// provider) and waits for terraform to be gone.
func (p *tfProc) kill() {
	if p.running() {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	}
	<-p.done
}

// wait waits for terraform to finish; past the limit it is killed and the test fails.
func (p *tfProc) wait(limit time.Duration) (string, int) {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(limit):
		p.kill()
		p.t.Fatalf("terraform %s did not finish within %s:\n%s", strings.Join(p.args, " "), limit, p.out.String())
	}
	return p.out.String(), p.code
}

// rolloutAction matches the provider's log lines (TF_LOG_PROVIDER=INFO)
// of a rollout acting on the host.
var rolloutAction = regexp.MustCompile(`provider\.terraform-provider-release: (starting a new revision|restarting a retained revision|starting the baseline|canary step|canary analysis|resuming a canary|switching traffic|traffic switched|every user back on stable|canary passed every step|stopping the previous revision|removing the baseline|removing a revision)`)

var actionFields = regexp.MustCompile(`\b(step|look|verdict|revision|weight)=\S+`)

// logLine matches a line of Terraform's own logging.
var logLine = regexp.MustCompile(`^\s*\d{4}-\d\d-\d\dT\S+ \[(TRACE|DEBUG|INFO|WARN|ERROR)\]`)

// actions are the rollout's actions in a terraform output logged with
// TF_LOG_PROVIDER=INFO, with their times.
func actions(out string) (times []time.Time, lines []string) {
	for _, l := range strings.Split(out, "\n") {
		if !rolloutAction.MatchString(l) {
			continue
		}
		ts, err := time.Parse("2006-01-02T15:04:05.000Z0700", strings.Fields(l)[0])
		if err != nil {
			continue
		}
		times = append(times, ts)
		msg := l[strings.Index(l, "provider.terraform-provider-release: ")+len("provider.terraform-provider-release: "):]
		if i := strings.Index(msg, ": "); i >= 0 {
			msg = msg[:i]
		}
		seen := map[string]bool{}
		for _, kv := range actionFields.FindAllString(l, -1) {
			if k, _, _ := strings.Cut(kv, "="); !seen[k] {
				seen[k] = true
				msg += " " + kv
			}
		}
		lines = append(lines, ts.Format("15:04:05.000")+" "+msg)
	}
	return times, lines
}

// withoutLogs is terraform's output without its logging, the rollout's
// actions kept in short.
func withoutLogs(out string) string {
	var b strings.Builder
	for _, l := range strings.Split(out, "\n") {
		if logLine.MatchString(l) {
			if _, ls := actions(l); len(ls) > 0 {
				b.WriteString("  [provider] " + ls[0] + "\n")
			}
			continue
		}
		b.WriteString(l + "\n")
	}
	return b.String()
}

// waitFor polls cond until it holds; past the limit the test fails.
func waitFor(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// planCode runs `terraform plan -detailed-exitcode`: 0 no changes, 2 changes, 1 error.
func (w *tfWorkspace) planCode() (string, int) {
	w.t.Helper()
	return w.run("plan", "-detailed-exitcode")
}

// stateList lists the resources in the state, tainted ones (a create that
// failed half-way) left out.
func (w *tfWorkspace) stateList() []string {
	w.t.Helper()
	cmd := exec.Command(terraformPath(), "show", "-json")
	cmd.Dir, cmd.Env = w.dir, w.env
	out, err := cmd.Output()
	if err != nil {
		w.t.Fatalf("terraform show -json: %v\n%s", err, out)
	}
	var st struct {
		Values struct {
			RootModule struct {
				Resources []struct {
					Address string `json:"address"`
					Tainted bool   `json:"tainted"`
				} `json:"resources"`
			} `json:"root_module"`
		} `json:"values"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		w.t.Fatalf("terraform show -json: %v\n%s", err, out)
	}
	var list []string
	for _, r := range st.Values.RootModule.Resources {
		if !r.Tainted {
			list = append(list, r.Address)
		}
	}
	return list
}

// plannedRollout plans and returns the `rollout` the plan gives an
// environment (its new value, "" when the plan does not change it), with the
// plan's text and exit code (0 no changes, 2 changes, 1 error).
func (w *tfWorkspace) plannedRollout(address string) (string, string, int) {
	w.t.Helper()
	out, code := w.run("plan", "-detailed-exitcode", "-out=fault.tfplan")
	if code == 1 {
		return "", out, code
	}
	cmd := exec.Command(terraformPath(), "show", "-json", "fault.tfplan")
	cmd.Dir, cmd.Env = w.dir, w.env
	js, err := cmd.Output()
	if err != nil {
		w.t.Fatalf("terraform show -json fault.tfplan: %v\n%s", err, js)
	}
	var plan struct {
		ResourceChanges []struct {
			Address string `json:"address"`
			Change  struct {
				After map[string]any `json:"after"`
			} `json:"change"`
		} `json:"resource_changes"`
	}
	if err := json.Unmarshal(js, &plan); err != nil {
		w.t.Fatalf("terraform show -json fault.tfplan: %v", err)
	}
	for _, rc := range plan.ResourceChanges {
		if rc.Address == address {
			if r, ok := rc.Change.After["rollout"].(string); ok {
				return r, out, code
			}
		}
	}
	return "", out, code
}

// copyStateFrom gives w a copy of another workspace's local state: a second
// pipeline with the same state, outside the first one's state lock.
func (w *tfWorkspace) copyStateFrom(other *tfWorkspace) {
	w.t.Helper()
	b, err := os.ReadFile(filepath.Join(other.dir, "terraform.tfstate"))
	if err != nil {
		w.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(w.dir, "terraform.tfstate"), b, 0o600); err != nil {
		w.t.Fatal(err)
	}
}

// ---------------------------------------------------------------------------
// Failpoints.

// failpointIdents names each point's constant, as production code refers to it.
var failpointIdents = map[string]string{
	failpoint.Created: "Created", failpoint.Started: "Started", failpoint.Healthy: "Healthy", failpoint.Switched: "Switched",
	failpoint.Retiring: "Retiring", failpoint.BaselineUp: "BaselineUp", failpoint.StepRouted: "StepRouted",
	failpoint.StepJudged: "StepJudged", failpoint.AbortRouted: "AbortRouted", failpoint.AbortRemoving: "AbortRemoving",
	failpoint.Promoted: "Promoted", failpoint.RouteWritten: "RouteWritten", failpoint.ReloadSent: "ReloadSent",
	failpoint.MigrationRan: "MigrationRan", failpoint.MigrationDownRan: "MigrationDownRan",
}

// failpointIntegrated says whether the provider's code (outside tests and
// the failpoint package itself) hits the named point, so that running an
// apply with RELEASE_FAILPOINT set stops it there. Until then tests emulate
// the state the kill would leave.
func failpointIntegrated(t testing.TB, name string) bool {
	t.Helper()
	if os.Getenv("RELEASE_TEST_EMULATE_FAILPOINTS") != "" {
		return false
	}
	ident, ok := failpointIdents[name]
	if !ok {
		t.Fatalf("unknown failpoint %q", name)
	}
	use := regexp.MustCompile(`failpoint\.` + ident + `\b|"` + regexp.QuoteMeta(name) + `"`)
	found := false
	root := filepath.Join("..", "..")
	_ = filepath.WalkDir(filepath.Join(root, "internal"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || found {
			return err
		}
		if d.IsDir() {
			if d.Name() == "failpoint" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		if b, err := os.ReadFile(p); err == nil && use.Match(b) {
			found = true
		}
		return nil
	})
	if !found {
		t.Logf("failpoint %s is not hit by the provider yet: emulating the state its kill leaves", name)
	}
	return found
}

func failpointEnv(name string) []string { return []string{failpoint.Env + "=" + name} }

// ---------------------------------------------------------------------------
// The host, as the tests look at it.

func (f *envFixture) routerID() string {
	f.t.Helper()
	c, err := f.engine.Inspect(context.Background(), router.ContainerName(f.router))
	if err != nil {
		f.t.Fatalf("the router container: %v", err)
	}
	return c.ID
}

// routeOf is the route file of one environment's web service as the router has it.
func (f *envFixture) routeOf(env string) string {
	f.t.Helper()
	files, err := f.engine.ReadDir(context.Background(), f.routerID(), router.ConfigDir)
	if err != nil {
		f.t.Fatalf("reading the router's files: %v", err)
	}
	return string(files[router.RouteFileName(env, "web")])
}

// revision is the containers of one revision of the fixture's environment,
// of one track ("" for any but baseline).
func (f *envFixture) revision(rev int, track naming.Track) []docker.Container {
	var out []docker.Container
	for _, c := range f.containers() {
		if c.Labels[naming.LabelRevision] != strconv.Itoa(rev) {
			continue
		}
		if tr := naming.TrackOf(c.Labels); (track == "" && tr != naming.TrackBaseline) || tr == track {
			out = append(out, c)
		}
	}
	return out
}

// renderRouteTo renders the route the provider writes to send all traffic
// to the given containers (one track, weight 100 each, no stickiness).
func (f *envFixture) renderRouteTo(track naming.Track, cs []docker.Container) []byte {
	f.t.Helper()
	r := router.Route{Environment: f.env, Service: "web", ListenPort: 80, HealthPath: "/healthz", CheckInterval: 500 * time.Millisecond}
	for _, c := range cs {
		ip := c.IPs[naming.NetworkName(f.env, "web")]
		if ip == "" {
			f.t.Fatalf("container %s has no address on %s: %v", c.Name, naming.NetworkName(f.env, "web"), c.IPs)
		}
		rev, _ := strconv.Atoi(c.Labels[naming.LabelRevision])
		replica, _ := strconv.Atoi(c.Labels[naming.LabelReplica])
		r.Servers = append(r.Servers, router.Server{Name: naming.ServerName(track, rev, replica), Address: ip + ":8080", Weight: 100, Track: string(track)})
	}
	cfg, err := router.RenderRoute(r)
	if err != nil {
		f.t.Fatal(err)
	}
	return cfg
}

// routerLogLines are the router's recent log lines that match pattern: the
// router's own account of a server going DOWN, for the failure messages.
func (f *envFixture) routerLogLines(pattern string) string {
	logs, err := f.engine.Logs(context.Background(), router.ContainerName(f.router), 400)
	if err != nil {
		return "(router logs: " + err.Error() + ")"
	}
	re := regexp.MustCompile(pattern)
	var out []string
	for _, l := range strings.Split(logs, "\n") {
		if re.MatchString(l) {
			out = append(out, strings.TrimSpace(l))
		}
	}
	if len(out) > 6 {
		out = out[len(out)-6:]
	}
	return strings.Join(out, "\n")
}

// versionsAt asks url n times, each on a new connection, and counts the
// versions that answered (and the failures, under "failed: ...").
func versionsAt(url string, n int) map[string]int {
	out := map[string]int{}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	defer client.CloseIdleConnections()
	for i := 0; i < n; i++ {
		resp, err := client.Get(url)
		if err != nil {
			out["failed: "+err.Error()]++
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			out[fmt.Sprintf("failed: HTTP %d %q", resp.StatusCode, strings.TrimSpace(string(body)))]++
			continue
		}
		out[resp.Header.Get("X-App-Version")]++
	}
	return out
}

// environmentRead is what the release_environment data source says of an
// environment, read in a workspace (and so a state) of its own, as another
// pipeline reads staging.
type environmentRead struct {
	Digests  []string
	History  []int
	Revision int
	Output   string
}

func (f *envFixture) readEnvironment() environmentRead {
	f.t.Helper()
	w := newTFWorkspace(f.t, fmt.Sprintf(`
data "release_environment" "read" {
  name    = %q
  service = "web"
}
output "digests" { value = data.release_environment.read.verified.digests }
output "history" { value = [for h in data.release_environment.read.history : h.revision] }
output "revision" { value = data.release_environment.read.revision }
`, f.env))
	out := w.mustRun("apply", "-auto-approve")
	js, code := w.run("output", "-json")
	if code != 0 {
		f.t.Fatalf("terraform output exited %d:\n%s", code, js)
	}
	var outputs map[string]struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal([]byte(js), &outputs); err != nil {
		f.t.Fatalf("terraform output -json: %v\n%s", err, js)
	}
	r := environmentRead{Output: out}
	for name, dst := range map[string]any{"digests": &r.Digests, "history": &r.History, "revision": &r.Revision} {
		if err := json.Unmarshal(outputs[name].Value, dst); err != nil {
			f.t.Fatalf("output %s: %v", name, err)
		}
	}
	return r
}

// requireTestappKnob fails the test when the test application's image does
// not know a knob (the image was built from a testapp without it): a test
// must never pass because the fault it injects was silently ignored. The
// testapp logs its settings when it starts.
func (f *envFixture) requireTestappKnob(rev int, setting string) {
	f.t.Helper()
	for _, c := range f.revision(rev, "") {
		logs, err := f.engine.Logs(context.Background(), c.ID, 50)
		if err != nil {
			continue
		}
		if strings.Contains(logs, setting) {
			return
		}
		f.t.Fatalf("the testapp image does not apply %q (its start line: %q): rebuild it from this tree with scripts/stack.sh up",
			setting, strings.TrimSpace(strings.SplitN(logs, "\n", 2)[0]))
	}
	// No container left to ask (a refused release removes them): judged by the rest of the test.
}

func contains[T comparable](list []T, v T) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// short is a digest as a person reads it.
func short(digest string) string {
	if i := strings.Index(digest, ":"); i >= 0 && len(digest) > i+13 {
		return digest[:i+13]
	}
	return digest
}

// ---------------------------------------------------------------------------
// The faults.

// A health endpoint that takes 6s, with health_check.timeout = "10s": the
// provider's gate passes it, but the router's own check must pass it too
// (invariant 1). Either the apply succeeds and the router keeps answering,
// or it fails before retiring v1, which keeps answering. Constant load runs
// across the apply and 15s after it (several check intervals), and not one
// request may fail; the next plan is empty, or explains the state.
func TestAccFault01_slowHealthCheckGateMatchesRouter(t *testing.T) {
	f := newEnvFixture(t)
	cfg := func(digest, extra string) string {
		return strings.Replace(f.config(digest, extra), `health_check = { interval = "500ms", start_timeout = "20s" }`,
			`health_check = { interval = "1s", timeout = "10s", start_timeout = "60s" }`, 1)
	}
	w := newTFWorkspace(t, cfg(f.v1, ""))
	w.destroyOnCleanup()
	w.mustRun("apply", "-auto-approve")
	if err := f.checkServes("1.0.0")(nil); err != nil {
		t.Fatal(err)
	}

	f.startLoad()
	w.write(cfg(f.v2, `env = { HEALTH_LATENCY = "6s" }`))
	out, code := w.run("apply", "-auto-approve")
	t.Logf("apply of v2 with a 6s health check exited %d:\n%s", code, out)
	f.requireTestappKnob(2, "health_latency=6s")
	time.Sleep(15 * time.Second)
	loadErr := f.stopLoad("switch to a v2 whose health check takes 6s, and 15s after")
	if loadErr != nil {
		t.Errorf("%v\nthe router's own checks: %s", loadErr, f.routerLogLines(`DOWN|Layer7|Health check`))
	}

	if code == 0 {
		// The apply said the release is done: the router must agree.
		if err := f.checkServes("2.0.0")(nil); err != nil {
			t.Errorf("the apply completed, but then: %v\nthe router's own checks: %s", err, f.routerLogLines(`DOWN|Layer7`))
		}
		plan, pc := w.planCode()
		switch {
		case pc == 1:
			t.Errorf("the plan after the apply failed:\n%s", plan)
		case pc == 0 && f.checkServes("2.0.0")(nil) != nil:
			t.Errorf("the plan after the apply says no changes while the router does not serve v2")
		}
		return
	}
	// The apply refused: before retiring v1, saying why.
	if !regexp.MustCompile(`(?i)health|check|timeout`).MatchString(out) {
		t.Errorf("the apply failed without saying the health check is the reason:\n%s", out)
	}
	if err := f.checkServes("1.0.0")(nil); err != nil {
		t.Errorf("the apply failed, and v1 does not serve: %v", err)
	}
	w.write(cfg(f.v1, ""))
	if plan, pc := w.planCode(); pc != 0 {
		t.Errorf("after the refused release, the plan of v1 (what serves) is not empty (exit %d):\n%s", pc, plan)
	}
}

// `verified` lists only digests that served all of an environment's traffic
// (invariant 2): a v2 that is present but still waiting for its health
// check, and the same v2 left behind by a killed apply, are not verified;
// meanwhile staging still serves v1. Read through the data source, from a
// state of its own, as production's pipeline reads staging.
func TestAccFault02_verifiedMeansServed(t *testing.T) {
	f := newEnvFixture(t)
	cfg := func(digest, extra string) string {
		return strings.Replace(f.config(digest, extra), `start_timeout = "20s"`, `start_timeout = "120s"`, 1)
	}
	w := newTFWorkspace(t, cfg(f.v1, ""))
	w.destroyOnCleanup()
	w.mustRun("apply", "-auto-approve")

	w.write(cfg(f.v2, `env = { HEALTH_DELAY = "40s" }`))
	apply := w.startTF(nil, "apply", "-auto-approve")
	waitFor(t, 2*time.Minute, "revision 2's containers to run", func() bool {
		n := 0
		for _, c := range f.revision(2, "") {
			if c.Running() {
				n++
			}
		}
		return n == 2
	})

	during := f.readEnvironment()
	if !apply.running() {
		out, code := apply.wait(0)
		t.Fatalf("the staging apply ended (exit %d) before the read, the test did not read during the wait:\n%s", code, out)
	}
	t.Logf("while staging waits for v2's health: verified %v, history %v, revision %d", during.Digests, during.History, during.Revision)
	if err := f.checkServes("1.0.0")(nil); err != nil {
		t.Fatalf("staging should still serve v1 while v2 waits for its health: %v", err)
	}
	if contains(during.Digests, f.v2) {
		t.Errorf("while staging's apply waits for v2's health and v1 serves every request, verified.digests lists v2 %s: %v (history %v)",
			short(f.v2), during.Digests, during.History)
	}

	apply.kill()
	t.Logf("killed staging's apply; its output:\n%s", apply.out.String())
	after := f.readEnvironment()
	t.Logf("after the kill: verified %v, history %v, revision %d", after.Digests, after.History, after.Revision)
	if err := f.checkServes("1.0.0")(nil); err != nil {
		t.Errorf("after the kill staging should still serve v1: %v", err)
	}
	if contains(after.Digests, f.v2) {
		t.Errorf("after staging's apply was killed, v2 %s never served but verified.digests lists it: %v (history %v)",
			short(f.v2), after.Digests, after.History)
	}

	// The next plan explains, the next apply converges, the plan after is empty.
	if plan, pc := w.planCode(); pc != 2 {
		t.Errorf("the plan after the kill (exit %d) shows no release of v2:\n%s", pc, plan)
	}
	w.mustRun("apply", "-auto-approve")
	if err := f.checkServes("2.0.0")(nil); err != nil {
		t.Errorf("after the next apply: %v", err)
	}
	if plan, pc := w.planCode(); pc != 0 {
		t.Errorf("the plan after the converging apply is not empty (exit %d):\n%s", pc, plan)
	}
	if done := f.readEnvironment(); !contains(done.Digests, f.v2) {
		t.Errorf("once v2 serves, verified.digests should list it: %v", done.Digests)
	}
}

// Two environments created in one apply, both on the router's default
// listener: exactly one gets it, the other fails naming the listener; the
// listener never splits its requests between two services. Giving the loser
// a listener of its own then converges.
func TestAccFault03_twoEnvironmentsOneListener(t *testing.T) {
	f := newEnvFixture(t)
	other := f.env + "-b"
	otherPort := freePort(t)
	routerCfg := fmt.Sprintf(`
resource "release_router" "edge" {
  name  = %q
  image = %q
  ports = [{ internal = 80, external = %d }, { internal = 81, external = %d }]
}
`, f.router, f.haproxy, f.port, otherPort)
	env := func(res, name, digest, extra string) string {
		return fmt.Sprintf(`
resource "release_environment" %q {
  name     = %q
  service  = "web"
  image    = "%s@%s"
  replicas = 1
  router   = release_router.edge.id
  health_check = { interval = "500ms", start_timeout = "30s" }
  stop_timeout = "2s"
  %s
}
`, res, name, f.repo, digest, extra)
	}
	w := newTFWorkspace(t, routerCfg+env("a", f.env, f.v1, "")+env("b", other, f.v2, ""))
	w.destroyOnCleanup()
	out, code := w.run("apply", "-auto-approve", "-parallelism=10")
	t.Logf("apply of two environments on listener 80 exited %d:\n%s", code, out)

	seen := versionsAt(f.url(), 60)
	t.Logf("60 requests on new connections to listener 80: %v", seen)
	answered := 0
	for v := range seen {
		if !strings.HasPrefix(v, "failed") {
			answered++
		}
	}
	if answered != 1 {
		t.Errorf("listener 80 is answered by %d services (environment %s serves 1.0.0, %s serves 2.0.0): %v", answered, f.env, other, seen)
	}
	if code == 0 {
		t.Errorf("the apply of two environments on one listener succeeded: one of them must fail, naming the listener")
	} else if !regexp.MustCompile(`(?is)error:.*(listen|lease)`).MatchString(out) {
		t.Errorf("the apply failed (exit %d) without naming the listener:\n%s", code, out)
	}
	state := w.stateList()
	inState := map[string]bool{}
	for _, a := range state {
		inState[a] = true
	}
	if inState["release_environment.a"] == inState["release_environment.b"] {
		t.Fatalf("want exactly one environment in the state, have %v", state)
	}

	// The loser gets listener 81 of its own: plan, apply, empty plan.
	aExtra, bExtra := "", ""
	loserURL, loser, winner := fmt.Sprintf("http://127.0.0.1:%d/", otherPort), "2.0.0", "1.0.0"
	if inState["release_environment.b"] {
		aExtra, loser, winner = "listen_port = 81", "1.0.0", "2.0.0"
	} else {
		bExtra = "listen_port = 81"
	}
	w.write(routerCfg + env("a", f.env, f.v1, aExtra) + env("b", other, f.v2, bExtra))
	if plan, pc := w.planCode(); pc != 2 {
		t.Errorf("the plan with the loser on listener 81 (exit %d):\n%s", pc, plan)
	}
	w.mustRun("apply", "-auto-approve")
	if plan, pc := w.planCode(); pc != 0 {
		t.Errorf("the plan after the converging apply is not empty (exit %d):\n%s", pc, plan)
	}
	if got := versionsAt(f.url(), 20); got[winner] != 20 {
		t.Errorf("listener 80 after the fix: %v, want only %s", got, winner)
	}
	if got := versionsAt(loserURL, 20); got[loser] != 20 {
		t.Errorf("listener 81 after the fix: %v, want only %s", got, loser)
	}
}

// A canary that passed a look and then goes dark (its containers cut off
// the network, so the router sends it nothing more): the later looks see
// no new requests, which is inconclusive, never a pass. The apply fails with
// Canary Aborted, stable keeps serving, and no request fails once the
// router has seen the canary go (the seconds of the cut itself aside).
func TestAccFault04_darkCanaryNotPromoted(t *testing.T) {
	f := newCanaryFixture(t)
	w := newTFWorkspace(t, f.config(f.v1, ""))
	w.destroyOnCleanup()
	w.mustRun("apply", "-auto-approve")

	f.startLoad()
	w.write(f.config(f.v2, ""))
	apply := w.startTF([]string{"TF_LOG_PROVIDER=INFO"}, "apply", "-auto-approve")
	passed := regexp.MustCompile(`canary analysis.*verdict=pass`)
	waitFor(t, 3*time.Minute, "a passing canary analysis", func() bool {
		return passed.MatchString(apply.out.String()) || !apply.running()
	})
	if !apply.running() {
		out, code := apply.wait(0)
		t.Fatalf("the apply ended (exit %d) before a look passed:\n%s", code, withoutLogs(out))
	}
	if err := f.stopLoad("canary of v2 up to its first passing look", "1.0.0", "2.0.0"); err != nil {
		t.Errorf("before the canary went dark: %v", err)
	}

	// The canary goes dark: its containers leave the network the router reaches them on.
	dark := f.revision(2, naming.TrackCanary)
	if len(dark) == 0 {
		t.Fatal("no canary container found")
	}
	f.startLoad()
	for _, c := range dark {
		if err := f.engine.DisconnectNetwork(context.Background(), naming.NetworkName(f.env, "web"), c.ID); err != nil {
			t.Fatal(err)
		}
	}
	darkAt := time.Now()
	t.Logf("the canary went dark at %s: %d containers off the network", darkAt.Format("15:04:05.000"), len(dark))
	// The router needs a few checks to mark the canary DOWN, and the
	// requests already sent to it run into their timeouts: not judged.
	time.Sleep(12 * time.Second)
	if err := f.stopLoad("the seconds after the canary went dark (not judged)"); err != nil {
		t.Logf("(not judged) %v", err)
	}

	f.startLoad()
	out, code := apply.wait(5 * time.Minute)
	t.Logf("the apply with a dark canary exited %d:\n%s", code, withoutLogs(out))
	time.Sleep(10 * time.Second)
	if err := f.stopLoad("from 12s after the canary went dark to 10s after the apply", "1.0.0"); err != nil {
		t.Errorf("%v\nthe router: %s", err, f.routerLogLines(`DOWN|UP|no server available`))
	}
	if code == 0 {
		t.Errorf("a canary that received no request after %s was promoted (the apply exited 0)", darkAt.Format("15:04:05"))
	} else if !expectDiag(`(?s)Canary Aborted`).MatchString(out) {
		t.Errorf("the apply failed (exit %d) but not with Canary Aborted:\n%s", code, out)
	}
	if err := f.checkServes("1.0.0")(nil); err != nil {
		t.Errorf("stable must keep serving after the dark canary: %v", err)
	}
	if err := f.checkOnly("1")(nil); err != nil {
		t.Errorf("after the dark canary: %v", err)
	}
	// The state is still on v1: its plan is empty.
	w.write(f.config(f.v1, ""))
	if plan, pc := w.planCode(); pc != 0 {
		t.Errorf("the plan of v1 after the aborted canary is not empty (exit %d):\n%s", pc, plan)
	}
}

// An apply killed between writing the route file and reloading the router
// leaves a file that names v2's servers while the router still serves v1's.
// The next plan shows it, the next apply loads the route before it retires
// v1, and no request fails under constant load at any point.
func TestAccFault05_killedBetweenRouteWriteAndReload(t *testing.T) {
	f := newEnvFixture(t)
	w := newTFWorkspace(t, f.config(f.v1, ""))
	w.destroyOnCleanup()
	w.mustRun("apply", "-auto-approve")

	f.startLoad()
	// A start delay gives the emulation time to stop the apply before its route.
	w.write(f.config(f.v2, `env = { HEALTH_DELAY = "4s" }`))
	if failpointIntegrated(t, failpoint.RouteWritten) {
		// The first route written adds v2 with no traffic for the router's own
		// check; the second gives it everyone (revision 1 drained, a change of
		// weights for the runtime API): stop between writing that one and
		// setting it in the router.
		out, code := w.runWith(failpointEnv(failpoint.RouteWritten+"#2"), "apply", "-auto-approve")
		t.Logf("apply stopped at %s#2 (exit %d):\n%s", failpoint.RouteWritten, code, out)
	} else {
		apply := w.startTF(nil, "apply", "-auto-approve")
		waitFor(t, 2*time.Minute, "revision 2's containers to run", func() bool {
			n := 0
			for _, c := range f.revision(2, "") {
				if c.Running() {
					n++
				}
			}
			return n == 2 || !apply.running()
		})
		apply.kill()
		t.Logf("killed the apply once revision 2 ran; its output:\n%s", apply.out.String())
		var healthy []docker.Container
		waitFor(t, time.Minute, "revision 2's containers to be healthy", func() bool {
			healthy = healthy[:0]
			for _, c := range f.revision(2, "") {
				// The provider's gate: its probe passes in the container.
				full, err := f.engine.Inspect(context.Background(), c.ID)
				if err != nil {
					continue
				}
				if code, _, err := f.engine.Exec(context.Background(), c.ID, probe.Command(8080, "/healthz", 2*time.Second)[1:]); err == nil && code == 0 {
					healthy = append(healthy, full)
				}
			}
			return len(healthy) == 2
		})
		// The route file the apply would have written next, not loaded.
		if err := f.engine.CopyFiles(context.Background(), f.routerID(), router.ConfigDir, []docker.File{
			{Path: router.RouteFileName(f.env, "web"), Content: f.renderRouteTo(naming.TrackStable, healthy), Mode: 0o644},
		}); err != nil {
			t.Fatal(err)
		}
	}
	route := f.routeOf(f.env)
	everyone := strings.Contains(route, "server r2-1")
	for _, s := range router.ParseRouteServers([]byte(route)) {
		if strings.HasPrefix(s.Name, "r1-") && !s.Drain || strings.HasPrefix(s.Name, "r2-") && s.Weight == 0 {
			everyone = false
		}
	}
	if !everyone {
		t.Fatalf("the route file should give revision 2's servers all traffic (revision 1's drained or gone):\n%s", route)
	}
	if err := f.checkServes("1.0.0")(nil); err != nil {
		t.Fatalf("the route file is written but not loaded: v1 should still answer: %v", err)
	}

	plan, pc := w.planCode()
	t.Logf("plan after the kill (exit %d):\n%s", pc, plan)
	if pc != 2 {
		t.Errorf("the plan after the kill says no changes (exit %d)", pc)
	}
	out, code := w.run("apply", "-auto-approve")
	t.Logf("the next apply exited %d:\n%s", code, out)
	time.Sleep(3 * time.Second)
	if err := f.stopLoad("kill between route write and reload, then the next apply", "1.0.0"); err != nil {
		t.Errorf("%v\nthe router: %s", err, f.routerLogLines(`DOWN|no server available|Reload|Loading`))
	}
	if code != 0 {
		t.Errorf("the next apply did not converge (exit %d)", code)
	}
	serveErr := f.checkServes("2.0.0")(nil)
	if serveErr != nil {
		t.Errorf("after the next apply: %v", serveErr)
	}
	plan, pc = w.planCode()
	switch {
	case pc != 0:
		t.Errorf("the plan after the converging apply is not empty (exit %d):\n%s", pc, plan)
	case serveErr != nil:
		t.Errorf("the plan after the next apply says no changes, while the router answers: %v", serveErr)
	}
}

// A canary that failed its analysis, whose abort was killed while its
// containers were stopped but not yet removed, is never released again as
// a "retained revision": the CI retry of the same config does not roll back
// to it (a hard switch to the failed release), it runs the canary again or
// fails clearly, and once the retry is over no user is answered by it. The
// aborted canary is not verified. Containers created but never started are
// not retained either.
func TestAccFault06_abortedCanaryNeverReused(t *testing.T) {
	f := newCanaryFixture(t)
	ctx := context.Background()
	bad := f.config(f.v2, `env = { ERROR_RATE = "0.2" }`)
	w := newTFWorkspace(t, f.config(f.v1, ""))
	w.destroyOnCleanup()
	w.mustRun("apply", "-auto-approve")

	f.startLoad()
	w.write(bad)
	var canaryLabels map[string]string
	var canaryEnv []string
	if failpointIntegrated(t, failpoint.AbortRemoving) {
		out, code := w.runWith(failpointEnv(failpoint.AbortRemoving), "apply", "-auto-approve")
		t.Logf("apply stopped at %s (exit %d):\n%s", failpoint.AbortRemoving, code, out)
	} else {
		apply := w.startTF(nil, "apply", "-auto-approve")
		waitFor(t, 2*time.Minute, "the canary's split", func() bool {
			return strings.Contains(f.routeOf(f.env), "server c2-1") || !apply.running()
		})
		apply.kill()
		t.Logf("killed the canary's apply at its split; its output:\n%s", apply.out.String())
		// What the abort leaves when killed while removing: every user back
		// on stable, the canary's (and baseline's) containers stopped, not removed.
		ctl := &router.Controller{Docker: f.engine}
		err := ctl.Apply(ctx, f.routerID(), map[string][]byte{
			router.RouteFileName(f.env, "web"): f.renderRouteTo(naming.TrackStable, f.revision(1, naming.TrackStable)),
		})
		ctl.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range append(f.revision(2, naming.TrackCanary), f.revision(1, naming.TrackBaseline)...) {
			if err := f.engine.Stop(ctx, c.ID, 5*time.Second); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := f.stopCanaryLoad("the failed canary and its interrupted abort", "2.0.0", "1.0.0"); err != nil {
		t.Errorf("%v", err)
	}
	stopped := f.revision(2, naming.TrackCanary)
	if len(stopped) == 0 {
		t.Fatal("the failed canary's containers are gone: the interrupted abort was not reproduced")
	}
	for _, c := range stopped {
		if c.Running() {
			t.Fatalf("the failed canary's container %s still runs: the interrupted abort was not reproduced", c.Name)
		}
	}
	if full, err := f.engine.Inspect(ctx, stopped[0].ID); err == nil {
		canaryLabels, canaryEnv = full.Labels, full.Env
	} else {
		t.Fatal(err)
	}
	if err := f.checkServes("1.0.0")(nil); err != nil {
		t.Fatalf("after the interrupted abort, v1 should serve every user: %v", err)
	}
	if r := f.readEnvironment(); contains(r.Digests, f.v2) {
		t.Errorf("the aborted canary's v2 %s is listed in verified.digests: %v (history %v)", short(f.v2), r.Digests, r.History)
	}

	// The CI retry: the same config, planned then applied, under load.
	rollout, plan, pc := w.plannedRollout("release_environment.web")
	t.Logf("the retry's plan (exit %d), rollout %q:\n%s", pc, rollout, plan)
	if strings.HasPrefix(rollout, "rollback to revision 2") || strings.Contains(rollout, "then rollback to revision 2") {
		t.Errorf("the retry's plan releases the failed canary again as a retained revision: rollout = %q", rollout)
	}
	f.startLoad()
	out, code := w.run("apply", "-auto-approve")
	t.Logf("the retry's apply exited %d:\n%s", code, out)
	during := f.load.Snapshot()
	duringNew := f.loadNew.Snapshot()
	if err := f.stopLoadAllowing("the retry", "2.0.0", "1.0.0"); err != nil {
		t.Errorf("%v", err)
	}
	total := during.Requests + duringNew.Requests
	byV2 := during.ByVersion["2.0.0"] + during.AppErrors["2.0.0"] + duringNew.ByVersion["2.0.0"] + duringNew.AppErrors["2.0.0"]
	if total > 0 && byV2*100 > total*35 {
		t.Errorf("during the retry the failed release answered %d of %d requests (%d%%, %d of them HTTP 500): more than a canary's share",
			byV2, total, byV2*100/total, during.AppErrors["2.0.0"]+duringNew.AppErrors["2.0.0"])
	}
	if code == 0 {
		t.Errorf("the retry of a release whose canary failed succeeded: it must run the canary again (and fail it) or refuse clearly")
	} else if !regexp.MustCompile(`(?i)canary`).MatchString(out) {
		t.Errorf("the retry failed (exit %d) without saying why in terms of the canary:\n%s", code, out)
	}
	f.startLoad()
	time.Sleep(8 * time.Second)
	after := f.load.Snapshot()
	if err := f.stopLoad("after the retry", "1.0.0"); err != nil {
		t.Errorf("once the retry is over, users get the failed release: %v (%s)", err, after)
	} else if after.ByVersion["2.0.0"] > 0 {
		t.Errorf("once the retry is over, the failed release still answers users: %s", after)
	}

	// Back to v1, whatever the retry did: the apply converges, the plan after is empty.
	w.write(f.config(f.v1, ""))
	if plan, pc := w.planCode(); pc == 1 {
		t.Errorf("the plan of v1 failed:\n%s", plan)
	}
	w.mustRun("apply", "-auto-approve")
	if plan, pc := w.planCode(); pc != 0 {
		t.Errorf("the plan after the apply of v1 is not empty (exit %d):\n%s", pc, plan)
	}

	// Containers created but never started are no retained revision either:
	// the bad release's config, killed once its containers are created.
	next := 0
	for _, c := range f.containers() {
		next = max(next, atoiLabel(c.Labels[naming.LabelRevision]))
	}
	next++
	w.write(bad)
	createdNow := func() (names []string) {
		for _, c := range f.containers() {
			if c.State == "created" {
				names = append(names, c.Name)
			}
		}
		return names
	}
	if failpointIntegrated(t, failpoint.Created) {
		out, code := w.runWith(failpointEnv(failpoint.Created), "apply", "-auto-approve")
		t.Logf("apply stopped at %s (exit %d):\n%s", failpoint.Created, code, out)
	}
	if len(createdNow()) == 0 { // not reached (or not integrated): what its kill leaves
		for replica := 1; replica <= 2; replica++ {
			labels := map[string]string{}
			for k, v := range canaryLabels {
				labels[k] = v
			}
			labels[naming.LabelRevision] = strconv.Itoa(next)
			labels[naming.LabelReplica] = strconv.Itoa(replica)
			labels[naming.LabelDeployedAt] = strconv.FormatInt(time.Now().Unix(), 10)
			env := []string{}
			for _, kv := range canaryEnv {
				if !strings.HasPrefix(kv, "RELEASE_REVISION=") {
					env = append(env, kv)
				}
			}
			env = append(env, "RELEASE_REVISION="+strconv.Itoa(next))
			if _, err := f.engine.Create(ctx, docker.ContainerSpec{
				Name: naming.ContainerName(f.env, "web", naming.TrackCanary, next, replica), Image: canaryLabels[naming.LabelImage],
				Env: env, Labels: labels, Network: naming.NetworkName(f.env, "web"),
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	created := createdNow()
	t.Logf("created, never started: %v", created)
	if len(created) == 0 {
		t.Fatal("no container is left created but never started: the kill was not reproduced")
	}
	createdRevs := map[int]bool{}
	for _, c := range f.containers() {
		if c.State == "created" {
			createdRevs[atoiLabel(c.Labels[naming.LabelRevision])] = true
		}
	}
	rollout, plan, pc = w.plannedRollout("release_environment.web")
	t.Logf("the plan with containers %v created, never started (exit %d), rollout %q", created, pc, rollout)
	r := f.readEnvironment()
	for rev := range createdRevs {
		if strings.Contains(rollout, fmt.Sprintf("rollback to revision %d", rev)) {
			t.Errorf("with containers %v created but never started, the plan says rollout = %q", created, rollout)
		}
		if contains(r.History, rev) {
			t.Errorf("containers created but never started (revision %d) count as a revision that served: history %v", rev, r.History)
		}
	}

	// Back to v1: the plan explains, the apply converges, the plan after is empty.
	w.write(f.config(f.v1, ""))
	if plan, pc := w.planCode(); pc == 1 {
		t.Errorf("the plan of v1 failed:\n%s", plan)
	}
	w.mustRun("apply", "-auto-approve")
	if plan, pc := w.planCode(); pc != 0 {
		t.Errorf("the plan after the converging apply is not empty (exit %d):\n%s", pc, plan)
	}
	if err := f.checkServes("1.0.0")(nil); err != nil {
		t.Error(err)
	}
}

func atoiLabel(s string) int { n, _ := strconv.Atoi(s); return n }

// Two applies on one environment at once (two pipelines, each with its own
// copy of the state, so Terraform's state lock cannot part them): the first
// runs a canary; the second starts mid-step. The second waits for the
// router's lease or fails naming its holder, never runs beside the first;
// the first completes; something serves every request throughout.
func TestAccFault09_twoAppliesOneEnvironment(t *testing.T) {
	f := newCanaryFixture(t)
	w1 := newTFWorkspace(t, f.config(f.v1, ""))
	w1.destroyOnCleanup()
	w1.mustRun("apply", "-auto-approve")
	w2 := newTFWorkspace(t, f.config(f.v1, ""))
	w2.copyStateFrom(w1)

	f.startLoad()
	w1.write(f.config(f.v2, ""))
	w2.write(f.config(f.v2, ""))
	logs := []string{"TF_LOG_PROVIDER=INFO"}
	first := w1.startTF(logs, "apply", "-auto-approve")
	waitFor(t, 2*time.Minute, "the first apply's canary split", func() bool {
		return strings.Contains(f.routeOf(f.env), "server c2-1") || !first.running()
	})
	time.Sleep(6 * time.Second) // mid step 1 (18s)
	if !first.running() {
		out, code := first.wait(0)
		t.Fatalf("the first apply ended (exit %d) before the second started:\n%s", code, withoutLogs(out))
	}
	second := w2.startTF(logs, "apply", "-auto-approve")
	out2, code2 := second.wait(10 * time.Minute)
	out1, code1 := first.wait(10 * time.Minute)
	t.Logf("first apply (exit %d, ended %s):\n%s", code1, first.ended.Format("15:04:05.000"), withoutLogs(out1))
	t.Logf("second apply (exit %d, started %s, ended %s):\n%s", code2, second.began.Format("15:04:05.000"), second.ended.Format("15:04:05.000"), withoutLogs(out2))
	time.Sleep(5 * time.Second)
	if err := f.stopCanaryLoad("two applies on one environment", "", "1.0.0"); err != nil {
		t.Errorf("%v\nthe router: %s", err, f.routerLogLines(`DOWN|no server available`))
	}

	if code1 != 0 {
		t.Errorf("the first apply, whose canary was under way, did not complete (exit %d)", code1)
	}
	// Never both: nothing the second does on the host happens before the first is done.
	times, lines := actions(out2)
	var overlap []string
	for i, ts := range times {
		if ts.Before(first.ended) {
			overlap = append(overlap, lines[i])
		}
	}
	if len(overlap) > 0 {
		t.Errorf("both applies ran at once: while the first was under way (until %s), the second apply did %d things on the host: %s",
			first.ended.Format("15:04:05.000"), len(overlap), strings.Join(overlap, "; "))
	}
	lease := regexp.MustCompile(`(?is)error:.*(lease|held by|holder|another apply|in progress)`)
	if code2 != 0 && !lease.MatchString(out2) {
		t.Errorf("the second apply failed (exit %d) without naming the apply that holds the environment", code2)
	}
	if expectDiag(`Canary Aborted`).MatchString(out2) || expectDiag(`Canary Aborted`).MatchString(out1) {
		t.Errorf("a canary was aborted: the two applies undid each other's work")
	}

	if err := f.checkServes("2.0.0")(nil); err != nil {
		t.Errorf("after both applies: %v", err)
	}
	if err := f.checkOnly("2")(nil); err != nil {
		t.Errorf("after both applies: %v", err)
	}
	if plan, pc := w1.planCode(); pc != 0 {
		t.Errorf("the first pipeline's plan afterwards is not empty (exit %d):\n%s", pc, plan)
	}
	if plan, pc := w2.planCode(); pc == 1 {
		t.Errorf("the second pipeline's plan afterwards fails:\n%s", plan)
	}
}

// Two pipelines at once, each creating an environment on the same listener
// of one router: one proceeds, the other fails with the listener (or the
// lease holder) named; never both, and the listener answers for one service.
func TestAccFault03c_twoAppliesTwoEnvironmentsOneListener(t *testing.T) {
	f := newEnvFixture(t)
	routerOnly := fmt.Sprintf(`
resource "release_router" "edge" {
  name  = %q
  image = %q
  ports = [{ internal = 80, external = %d }]
}
`, f.router, f.haproxy, f.port)
	environment := func(name, digest, routerRef string) string {
		return fmt.Sprintf(`
resource "release_environment" %[1]q {
  name     = %[1]q
  service  = "web"
  image    = "%[2]s@%[3]s"
  router   = %[4]s
  health_check = { interval = "500ms", start_timeout = "20s" }
  stop_timeout = "5s"
}
`, name, f.repo, digest, routerRef)
	}
	w1 := newTFWorkspace(t, routerOnly)
	w1.destroyOnCleanup()
	w1.mustRun("apply", "-auto-approve")
	w2 := newTFWorkspace(t, environment(f.env+"b", f.v2, strconv.Quote(f.router)))
	w2.destroyOnCleanup() // runs first: environments go before their router
	w1.write(routerOnly + environment(f.env, f.v1, "release_router.edge.id"))

	first := w1.startTF(nil, "apply", "-auto-approve")
	second := w2.startTF(nil, "apply", "-auto-approve")
	out1, code1 := first.wait(5 * time.Minute)
	out2, code2 := second.wait(5 * time.Minute)
	t.Logf("first apply: exit %d\n%s", code1, out1)
	t.Logf("second apply: exit %d\n%s", code2, out2)
	if (code1 == 0) == (code2 == 0) {
		t.Fatalf("exits %d and %d: exactly one of two applies on one listener must succeed", code1, code2)
	}
	failed := out1
	if code1 == 0 {
		failed = out2
	}
	if !expectDiag(`Listener Already Used|Router Busy`).MatchString(failed) {
		t.Errorf("the apply that failed does not name the listener or the lease holder:\n%s", failed)
	}
	if versions := versionsAt(f.url(), 30); len(versions) != 1 {
		t.Errorf("the listener answers for %d services (or fails): %v", len(versions), versions)
	}
}
