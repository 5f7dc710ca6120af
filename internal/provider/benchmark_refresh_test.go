package provider

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/releasekit/terraform-provider-release/internal/docker"
	"github.com/releasekit/terraform-provider-release/internal/naming"
)

// BenchmarkRefresh measures `terraform plan` (which refreshes every
// environment) at several sizes on the real stack, through the real CLI:
// wall time, the Docker API calls the provider makes (a counting proxy in
// front of the daemon) and the provider's peak resident memory. Beside it,
// in the same run, what a generic Docker provider would cost at least:
// Terraform's own plan of as many resources (terraform_data, built in),
// and one listing plus one inspect per container through the Docker API
// (what a generic provider's refresh of plain containers does). No generic
// Docker provider can be downloaded here; the kreuzwerker provider planned
// 50 plain containers in 0.96s on this machine (issue 15).
//
//	TF_ACC=1 go test ./internal/provider/ -run '^$' -bench BenchmarkRefresh -benchtime 1x -timeout 90m
//
// RELEASE_BENCH_REFRESH_SIZES sets the sizes (default 50,500); 50
// environments share a router and its network, so 500 run on 10 routers.
// RELEASE_BENCH_BASELINE_PROVIDER names a directory holding another build
// of the provider (an older commit, say) whose plan of the same
// environments is measured in the same run. Every environment's health
// check runs every 30s so that hundreds of idle containers leave the
// machine usable. Everything is destroyed at the end, also on failure.
// Nothing here asserts a time.
//
// Creating is what takes long. On the 2-core test machine (2026-12-04, with
// the stack's Prometheus paused: it would scrape 500 containers every
// second), 50 environments were created in 34s and 500 in 392s, each in one
// apply: a new route reloads its router once with no server, and its
// servers then join through the runtime API, checked within 50ms. Before
// that, every release's reload restarted the router's 30s checks of every
// server, and 500 did not finish in 25 minutes.
func BenchmarkRefresh(b *testing.B) {
	benchStack(b)
	sizes := []int{50, 500}
	if s := os.Getenv("RELEASE_BENCH_REFRESH_SIZES"); s != "" {
		sizes = nil
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				b.Fatalf("RELEASE_BENCH_REFRESH_SIZES: %q is not a list of sizes such as 50,500", s)
			}
			sizes = append(sizes, n)
		}
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("environments=%d", n), func(b *testing.B) { benchRefresh(b, n) })
	}
}

// environmentsPerRouter is how many environments share a router (each on
// its own listener) and the router's network.
const environmentsPerRouter = 50

func benchRefresh(b *testing.B, n int) {
	f := newBenchFixture(b)
	routers := (n + environmentsPerRouter - 1) / environmentsPerRouter
	proxy := startCountingProxy(b)
	ports := distinctFreePorts(b, n)
	w := newTFWorkspace(b, f.refreshConfig(n, ports, ""))
	defer func() {
		start := time.Now()
		if out, code := w.run("destroy", "-auto-approve", "-parallelism=100"); code != 0 {
			b.Logf("destroy exited %d, trying again:\n%s", code, lastLines(out, 30))
			if out, code := w.run("destroy", "-auto-approve", "-parallelism=20"); code != 0 {
				b.Errorf("destroy exited %d: remove the containers labelled %s=%s* by hand:\n%s", code, naming.LabelEnvironment, f.prefix, lastLines(out, 30))
			}
		}
		fmt.Printf("%d environments: destroyed in %.0fs\n", n, time.Since(start).Seconds())
	}()

	// Many environments released at once on one router make it reload again
	// and again (a new listener each), and each reload restarts its checks
	// (every 30s here) of servers it loads from the files: a creation can time
	// out waiting for the router's check. Applying again finishes it.
	start := time.Now()
	for attempt := 1; ; attempt++ {
		out, code := w.run("apply", "-auto-approve", "-parallelism=100")
		if code == 0 {
			fmt.Printf("%d environments on %d routers: created in %.0fs (%d applies)\n", n, routers, time.Since(start).Seconds(), attempt)
			break
		}
		if attempt == 5 {
			b.Fatalf("the environments were not all created after %d applies:\n%s", attempt, lastLines(out, 40))
		}
		b.Logf("apply %d exited %d (%d creation errors); applying again", attempt, code, strings.Count(out, "\nError: "))
	}
	w.write(f.refreshConfig(n, ports, "unix://"+proxy.socket))
	binary := filepath.Join(cliProvider(b), "terraform-provider-release")

	var baseline *tfWorkspace
	var baselineBinary string
	if dir := os.Getenv("RELEASE_BENCH_BASELINE_PROVIDER"); dir != "" {
		baseline, baselineBinary = w.withProvider(b, dir), filepath.Join(dir, "terraform-provider-release")
	}
	floor := terraformDataWorkspace(b, n)
	apiList, apiInspect := f.engine, docker.NewEngine(docker.NewConnector(docker.ConfigFromEnv()))

	var plans, refreshes, calls, rss, basePlans, baseCalls, baseRSS, tfFloor, api []float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		proxy.reset()
		stop := sampleRSSOf(binary)
		t0 := time.Now()
		out, code := w.run("plan", "-detailed-exitcode")
		plans = append(plans, time.Since(t0).Seconds())
		rss = append(rss, stop()/(1<<20))
		if code != 0 || !strings.Contains(out, "No changes.") {
			b.Fatalf("the plan of unchanged environments is not empty (exit %d):\n%s", code, lastLines(out, 60))
		}
		calls = append(calls, float64(proxy.count()))
		planPaths := proxy.paths()

		proxy.reset()
		t0 = time.Now()
		w.mustRun("apply", "-refresh-only", "-auto-approve")
		refreshes = append(refreshes, time.Since(t0).Seconds())

		if baseline != nil {
			proxy.reset()
			stop := sampleRSSOf(baselineBinary)
			t0 = time.Now()
			baseline.mustRun("plan", "-detailed-exitcode")
			basePlans = append(basePlans, time.Since(t0).Seconds())
			baseRSS = append(baseRSS, stop()/(1<<20))
			baseCalls = append(baseCalls, float64(proxy.count()))
		}

		t0 = time.Now()
		floor.mustRun("plan", "-detailed-exitcode")
		tfFloor = append(tfFloor, time.Since(t0).Seconds())

		api = append(api, listAndInspect(b, apiList, apiInspect, f.prefix))

		b.Logf("run %d: plan %.2fs, %d Docker calls (%v), provider peak RSS %.1f MiB; refresh-only apply %.2fs",
			i+1, plans[i], int(calls[i]), planPaths, rss[i], refreshes[i])
	}
	b.StopTimer()
	b.ReportMetric(median(plans), "plan-s")
	b.ReportMetric(median(refreshes), "refresh-only-apply-s")
	b.ReportMetric(median(calls), "docker-calls/plan")
	b.ReportMetric(median(rss), "provider-peak-MiB")
	b.ReportMetric(median(tfFloor), "terraform-data-plan-s")
	b.ReportMetric(median(api), "api-list-inspect-s")
	fmt.Printf("%d environments on %d routers: plan %.2fs with %.0f Docker API calls (%.1f per router), refresh-only apply %.2fs, provider peak RSS %.1f MiB (medians of %d)\n",
		n, routers, median(plans), median(calls), median(calls)/float64(routers), median(refreshes), median(rss), b.N)
	if baseline != nil {
		b.ReportMetric(median(basePlans), "baseline-plan-s")
		fmt.Printf("%d environments, baseline provider %s: plan %.2fs with %.0f Docker API calls, provider peak RSS %.1f MiB; this build / baseline = %.2f\n",
			n, os.Getenv("RELEASE_BENCH_BASELINE_PROVIDER"), median(basePlans), median(baseCalls), median(baseRSS), median(plans)/median(basePlans))
	}
	fmt.Printf("%d environments, generic floor: terraform plan of %d terraform_data %.2fs; Docker API listing + %d inspects (10 at a time) %.2fs; "+
		"plan / (terraform floor + API) = %.2f; plan / 0.96s (kreuzwerker, 50 containers, issue 15) = %.2f\n",
		n, n, median(tfFloor), n, median(api), median(plans)/(median(tfFloor)+median(api)), median(plans)/0.96)
}

// refreshConfig is n environments of one replica, 50 to a router, each on
// its own listener and on its router's network.
func (f *benchFixture) refreshConfig(n int, ports []int, dockerHost string) string {
	var sb strings.Builder
	if dockerHost != "" {
		fmt.Fprintf(&sb, "provider \"release\" {\n  docker_host = %q\n}\n", dockerHost)
	}
	routers := (n + environmentsPerRouter - 1) / environmentsPerRouter
	for r := 0; r < routers; r++ {
		fmt.Fprintf(&sb, "resource \"release_router\" \"r%d\" {\n  name  = \"%s-%d\"\n  image = %q\n  ports = [\n", r, f.router, r, f.haproxy)
		for i := r * environmentsPerRouter; i < n && i < (r+1)*environmentsPerRouter; i++ {
			fmt.Fprintf(&sb, "    { internal = %d, external = %d },\n", 10000+i%environmentsPerRouter, ports[i])
		}
		sb.WriteString("  ]\n}\n")
	}
	for i := 0; i < n; i++ {
		fmt.Fprintf(&sb, `resource "release_environment" "e%[1]d" {
  name         = "%[2]s-%[1]d"
  service      = "web"
  image        = "%[3]s@%[4]s"
  router       = release_router.r%[5]d.id
  listen_port  = %[6]d
  network      = release_router.r%[5]d.network # one network per router: Docker's default pools hold about 30
  stop_timeout = "2s"
  health_check = { path = "/healthz", interval = "30s" } # hundreds of Docker health checks every second would saturate the host
}
`, i, f.prefix, f.repo, f.v1, i/environmentsPerRouter, 10000+i%environmentsPerRouter)
	}
	return sb.String()
}

func distinctFreePorts(b *testing.B, n int) []int {
	seen := map[int]bool{}
	var out []int
	for len(out) < n {
		if p := freePort(b); !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// withProvider is the same workspace (configuration and state) planned
// with the provider built in dir.
func (w *tfWorkspace) withProvider(b *testing.B, dir string) *tfWorkspace {
	rc := filepath.Join(b.TempDir(), ".terraformrc")
	text := "provider_installation {\n  dev_overrides {\n    \"releasekit/release\" = \"" + dir + "\"\n  }\n  direct {}\n}\n"
	if err := os.WriteFile(rc, []byte(text), 0o600); err != nil {
		b.Fatal(err)
	}
	env := append([]string(nil), w.env...)
	for i, kv := range env {
		if strings.HasPrefix(kv, "TF_CLI_CONFIG_FILE=") {
			env[i] = "TF_CLI_CONFIG_FILE=" + rc
		}
	}
	return &tfWorkspace{t: b, dir: w.dir, env: env}
}

// terraformDataWorkspace holds n terraform_data resources in its state:
// Terraform's own cost of refreshing and planning n resources, with no
// provider to start.
func terraformDataWorkspace(b *testing.B, n int) *tfWorkspace {
	dir := b.TempDir()
	var sb strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&sb, "resource \"terraform_data\" \"c%d\" {\n  input = \"container-%d\"\n}\n", i, i)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(sb.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	w := &tfWorkspace{t: b, dir: dir, env: append(os.Environ(), "TF_IN_AUTOMATION=1", "CHECKPOINT_DISABLE=1")}
	w.mustRun("apply", "-auto-approve")
	return w
}

// listAndInspect is what a generic Docker provider's refresh of plain
// containers asks the daemon: one listing, then one inspect per container,
// 10 at a time (Terraform's default parallelism). It returns the seconds taken.
func listAndInspect(b *testing.B, list, inspect *docker.Engine, prefix string) float64 {
	ctx := context.Background()
	start := time.Now()
	cs, err := list.List(ctx, map[string]string{naming.LabelManaged: "true", naming.LabelKind: string(naming.KindApp)})
	if err != nil {
		b.Fatal(err)
	}
	var ids []string
	for _, c := range cs {
		if strings.HasPrefix(c.Labels[naming.LabelEnvironment], prefix+"-") {
			ids = append(ids, c.ID)
		}
	}
	sem := make(chan struct{}, 10)
	var wg sync.WaitGroup
	var failed atomic.Int32
	for _, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if _, err := inspect.Inspect(ctx, id); err != nil {
				failed.Add(1)
			}
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		b.Fatalf("%d of %d inspects failed", failed.Load(), len(ids))
	}
	return time.Since(start).Seconds()
}

// sampleRSSOf polls the resident memory of the running processes of one
// provider binary (others' tests run other builds on this machine) and
// returns a function that stops and reports the peak in bytes.
func sampleRSSOf(binary string) func() float64 {
	var peak atomic.Int64
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
			entries, _ := os.ReadDir("/proc")
			for _, e := range entries {
				if _, err := strconv.Atoi(e.Name()); err != nil {
					continue
				}
				if exe, _ := os.Readlink("/proc/" + e.Name() + "/exe"); exe != binary {
					continue
				}
				status, _ := os.ReadFile("/proc/" + e.Name() + "/status")
				for _, line := range strings.Split(string(status), "\n") {
					if strings.HasPrefix(line, "VmHWM:") {
						kb, _ := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
						if kb*1024 > peak.Load() {
							peak.Store(kb * 1024)
						}
					}
				}
			}
		}
	}()
	return func() float64 { close(done); <-stopped; return float64(peak.Load()) }
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
