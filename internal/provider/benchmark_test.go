package provider

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/releasekit/terraform-provider-release/internal/docker"
	"github.com/releasekit/terraform-provider-release/internal/loadgen"
	"github.com/releasekit/terraform-provider-release/internal/naming"
)

// Benchmarks of the release path through the real terraform CLI, the built
// provider and the real stack. Run with the stack up:
//
//	TF_ACC=1 go test ./internal/provider/ -run '^$' -bench . -benchtime 5x
//
// They print their figures; nothing here asserts a time.

func benchStack(b *testing.B) {
	if os.Getenv("TF_ACC") == "" {
		b.Skip("set TF_ACC=1 and start the stack (make stack) to run the release benchmarks")
	}
}

// BenchmarkSwitchOverhead measures what a hard switch costs beyond the new
// container's own start: apply wall time minus the time from the container's
// start to its first passing health check.
func BenchmarkSwitchOverhead(b *testing.B) {
	benchStack(b)
	f := newBenchFixture(b)
	w := newTFWorkspace(b, f.config(b, 1))
	defer w.run("destroy", "-auto-approve")
	w.mustRun("apply", "-auto-approve")

	var overheads, overheadsCreated, applies, healthy, noops []float64
	phases := &phaseTimes{byName: map[string][]float64{}}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// The fixed cost of any apply: terraform, the provider's start, refresh and plan.
		start := time.Now()
		w.mustRun("apply", "-auto-approve")
		noops = append(noops, time.Since(start).Seconds())

		w.write(f.config(b, i+2)) // a new setting each time: a new revision, new containers
		logPath := filepath.Join(w.dir, fmt.Sprintf("switch-%d.log", i+1))
		env := w.env
		// The provider's log only (terraform's own at INFO would slow it): its "phase … in …" lines.
		w.env = append(append([]string(nil), env...), "TF_LOG_PROVIDER=INFO", "TF_LOG_PATH="+logPath)
		start = time.Now()
		w.mustRun("apply", "-auto-approve")
		apply := time.Since(start).Seconds()
		w.env = env
		phases.add(b, logPath)
		h, hc := f.healthySeconds(b, i+2)
		applies, healthy = append(applies, apply), append(healthy, h)
		overheads, overheadsCreated = append(overheads, apply-h), append(overheadsCreated, apply-hc)
		b.Logf("switch %d: apply %.2fs; container start to healthy %.2fs (create to healthy %.2fs); overhead %.2fs (%.2fs); no-op apply %.2fs",
			i+1, apply, h, hc, apply-h, apply-hc, noops[i])
	}
	b.StopTimer()
	// The provider's own share: its release (the environment's apply, from
	// its log) minus the app's start to ready; the rest of the CLI apply is
	// Terraform's, which a no-op apply shows.
	var provider []float64
	for i, whole := range phases.byName["whole release"] {
		if i < len(healthy) {
			provider = append(provider, whole/1000-healthy[i])
		}
	}
	b.ReportMetric(median(overheads), "overhead-s")
	b.ReportMetric(median(provider), "provider-overhead-s")
	b.ReportMetric(median(overheadsCreated), "overhead-from-create-s")
	b.ReportMetric(median(applies), "apply-s")
	b.ReportMetric(median(healthy), "healthy-s")
	b.ReportMetric(median(noops), "noop-apply-s")
	fmt.Printf("switch overhead over %d switches (medians): %.2fs = apply %.2fs - container start to ready %.2fs; "+
		"%.2fs counting from the container's creation; a no-op apply takes %.2fs\n",
		b.N, median(overheads), median(applies), median(healthy), median(overheadsCreated), median(noops))
	fmt.Printf("the provider's own overhead (its release, from its log, minus the app's start to ready), median of %d: %.2fs\n",
		len(provider), median(provider))
	phases.print()
}

// phaseTimes collects the provider's "phase <name> in <duration>" log lines
// (TF_LOG_PROVIDER=INFO) of each apply: where a switch spends its time.
type phaseTimes struct {
	order  []string
	byName map[string][]float64
}

var phaseLine = regexp.MustCompile(`phase ([a-z][a-z ]*?) in ([0-9.]+[a-zµ]+)`)

func (p *phaseTimes) add(b *testing.B, logPath string) {
	raw, err := os.ReadFile(logPath)
	if err != nil {
		b.Logf("no provider log: %v", err)
		return
	}
	for _, m := range phaseLine.FindAllStringSubmatch(string(raw), -1) {
		d, err := time.ParseDuration(m[2])
		if err != nil {
			continue
		}
		if _, ok := p.byName[m[1]]; !ok {
			p.order = append(p.order, m[1])
		}
		p.byName[m[1]] = append(p.byName[m[1]], d.Seconds()*1000)
	}
}

func (p *phaseTimes) print() {
	if len(p.order) == 0 {
		return
	}
	fmt.Println("where a switch's apply spends its time, medians from the provider's log (ms):")
	for _, name := range p.order {
		fmt.Printf("  %-22s %7.0f  (of %d)\n", name, median(p.byName[name]), len(p.byName[name]))
	}
}

type benchFixture struct {
	router, prefix, repo, v1, haproxy string
	ports                             []int
	engine                            *docker.Engine
}

func newBenchFixture(b *testing.B) *benchFixture {
	testAccPreCheck(b)
	rnd := strconv.FormatInt(time.Now().UnixNano()%1e6, 36)
	f := &benchFixture{
		router: "bench-" + rnd, prefix: "b" + rnd,
		repo: testStackEnv(b, "RELEASE_TEST_IMAGE_REPOSITORY"), v1: testStackEnv(b, "RELEASE_TEST_IMAGE_V1_DIGEST"),
		haproxy: testStackEnv(b, "RELEASE_TEST_HAPROXY_IMAGE"),
		engine:  docker.NewEngine(docker.NewConnector(docker.ConfigFromEnv())),
	}
	return f
}

func (f *benchFixture) config(b testing.TB, iteration int) string {
	if f.ports == nil {
		f.ports = []int{freePort(b)}
	}
	return fmt.Sprintf(`
resource "release_router" "edge" {
  name  = %q
  image = %q
  ports = [{ internal = 80, external = %d }]
}
resource "release_environment" "web" {
  name    = "%s"
  service = "web"
  image   = "%s@%s"
  router  = release_router.edge.id
  env     = { ITERATION = "%d" }
  stop_timeout = "5s"
}
`, f.router, f.haproxy, f.ports[0], f.prefix, f.repo, f.v1, iteration)
}

// healthySeconds is how long the revision's first container took from its
// start (and from its creation) to be ready: the time of the app's own
// "listening on" log line, as the daemon stamped it. It does not depend on
// how the provider (or Docker) checks health, so it measures the app alone.
func (f *benchFixture) healthySeconds(b *testing.B, revision int) (float64, float64) {
	ctx := context.Background()
	cs, err := f.engine.List(ctx, map[string]string{naming.LabelEnvironment: f.prefix, naming.LabelRevision: strconv.Itoa(revision)})
	if err != nil || len(cs) == 0 {
		b.Fatalf("no container of revision %d: %v", revision, err)
	}
	started, created, ready := containerReady(b, cs[0].ID)
	return ready.Sub(started).Seconds(), ready.Sub(created).Seconds()
}

// containerReady reads when a testapp container was created, started, and
// logged that it listens.
func containerReady(b *testing.B, id string) (started, created, ready time.Time) {
	ctx := context.Background()
	cli, err := docker.NewConnector(docker.ConfigFromEnv()).Client(ctx)
	if err != nil {
		b.Fatal(err)
	}
	res, err := cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		b.Fatal(err)
	}
	started, _ = time.Parse(time.RFC3339Nano, res.Container.State.StartedAt)
	created, _ = time.Parse(time.RFC3339Nano, res.Container.Created)
	rc, err := cli.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStderr: true, ShowStdout: true, Timestamps: true})
	if err != nil {
		b.Fatal(err)
	}
	defer rc.Close()
	raw, _ := io.ReadAll(rc)
	for _, line := range strings.Split(string(raw), "\n") {
		if i := strings.Index(line, "20"); i >= 0 && strings.Contains(line, "listening on") {
			if t, err := time.Parse(time.RFC3339Nano, strings.Fields(line[i:])[0]); err == nil {
				return started, created, t
			}
		}
	}
	b.Fatalf("container %s logged no \"listening on\" line", id)
	return
}

// countingProxy forwards Docker API requests to the local daemon and counts them.
type countingProxy struct {
	socket string
	n      atomic.Int64
	mu     sync.Mutex
	seen   map[string]int
}

func startCountingProxy(b *testing.B) *countingProxy {
	dir, err := os.MkdirTemp("", "docker-proxy-")
	if err != nil {
		b.Fatal(err)
	}
	p := &countingProxy{socket: filepath.Join(dir, "docker.sock"), seen: map[string]int{}}
	l, err := net.Listen("unix", p.socket)
	if err != nil {
		b.Fatal(err)
	}
	target := strings.TrimPrefix(docker.ConfigFromEnv().Host, "unix://")
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) { r.Out.URL.Scheme, r.Out.URL.Host = "http", "docker" },
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", target)
		}},
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/_ping") {
			p.n.Add(1)
			p.mu.Lock()
			// Group by endpoint, without the API version and object IDs.
			parts := strings.Split(r.URL.Path, "/")
			key := r.Method + " " + parts[len(parts)-1]
			p.seen[key]++
			p.mu.Unlock()
		}
		rp.ServeHTTP(w, r)
	})}
	go srv.Serve(l)
	b.Cleanup(func() { srv.Close(); os.RemoveAll(dir) })
	return p
}

func (p *countingProxy) reset() {
	p.n.Store(0)
	p.mu.Lock()
	p.seen = map[string]int{}
	p.mu.Unlock()
}
func (p *countingProxy) count() int64 { return p.n.Load() }
func (p *countingProxy) paths() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]int{}
	for k, v := range p.seen {
		out[k] = v
	}
	return out
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// BenchmarkSwitchVsDockerRun times, in the same run, the whole CLI
// `terraform apply` of a hard switch (one replica) next to what a user
// would do by hand: `docker stop` the app's container and `docker run` a
// new one of the same image on the same published port (here through the
// Docker API). Each runs under the same small constant load, whose failed
// requests are counted.
func BenchmarkSwitchVsDockerRun(b *testing.B) {
	benchStack(b)
	f := newBenchFixture(b)
	w := newTFWorkspace(b, f.config(b, 1))
	defer w.run("destroy", "-auto-approve")
	w.mustRun("apply", "-auto-approve")
	ctx := context.Background()

	// The plain container: the same image on a published port.
	plainPort := freePort(b)
	var plainID string
	runPlain := func(i int) string {
		id, err := f.engine.Create(ctx, docker.ContainerSpec{
			Name:  fmt.Sprintf("%s-plain-%d", f.prefix, i),
			Image: f.repo + "@" + f.v1,
			Env:   []string{fmt.Sprintf("ITERATION=%d", i)},
			Ports: []docker.Port{{Internal: 8080, External: plainPort, HostIP: "127.0.0.1"}},
		})
		if err != nil {
			b.Fatal(err)
		}
		if err := f.engine.Start(ctx, id); err != nil {
			b.Fatal(err)
		}
		return id
	}
	plainID = runPlain(0)
	defer func() { _ = f.engine.Remove(ctx, plainID) }()
	waitAnswers(b, fmt.Sprintf("http://127.0.0.1:%d/", plainPort))

	const rate = 50
	load := func(port int) *loadgen.Run {
		return loadgen.Start(loadgen.Config{URL: fmt.Sprintf("http://127.0.0.1:%d/", port), Rate: rate, Workers: 4, KeepAlive: true, MaxDuration: 10 * time.Minute, Timeout: 5 * time.Second})
	}
	var applies, plains, answerings, applyFailed, plainFailed []float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w.write(f.config(b, i+2))
		l := load(f.ports[0])
		start := time.Now()
		w.mustRun("apply", "-auto-approve")
		apply := time.Since(start).Seconds()
		time.Sleep(time.Second)
		as := l.Stop()

		l = load(plainPort)
		start = time.Now()
		if err := f.engine.Stop(ctx, plainID, 5*time.Second); err != nil {
			b.Fatal(err)
		}
		if err := f.engine.Remove(ctx, plainID); err != nil {
			b.Fatal(err)
		}
		plainID = runPlain(i + 1)
		plain := time.Since(start).Seconds()
		waitAnswers(b, fmt.Sprintf("http://127.0.0.1:%d/", plainPort))
		answering := time.Since(start).Seconds()
		time.Sleep(time.Second)
		ps := l.Stop()

		applies, plains, answerings = append(applies, apply), append(plains, plain), append(answerings, answering)
		applyFailed, plainFailed = append(applyFailed, float64(as.Failed())), append(plainFailed, float64(ps.Failed()))
		b.Logf("switch %d: terraform apply %.2fs (%d of %d requests failed); docker stop + run %.2fs, answering after %.2fs (%d of %d requests failed)",
			i+1, apply, as.Failed(), as.Requests, plain, answering, ps.Failed(), ps.Requests)
	}
	b.StopTimer()
	b.ReportMetric(median(applies), "apply-s")
	b.ReportMetric(median(plains), "docker-stop-run-s")
	b.ReportMetric(median(answerings), "docker-stop-run-answering-s")
	b.ReportMetric(median(applyFailed), "apply-failed-req")
	b.ReportMetric(median(plainFailed), "docker-stop-run-failed-req")
	fmt.Printf("replacing one container, medians of %d at %d req/s: terraform apply %.2fs (%.0f failed requests); docker stop + docker run %.2fs, answering after %.2fs (%.0f failed requests); apply/docker %.1fx\n",
		b.N, rate, median(applies), median(applyFailed), median(plains), median(answerings), median(plainFailed), median(applies)/median(answerings))
}

// waitAnswers waits until url answers 200 (up to 10s).
func waitAnswers(b *testing.B, url string) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.Fatalf("%s does not answer", url)
}

// BenchmarkIdleCost measures what environments at rest cost the host: the
// host's busy CPU share (from /proc/stat) over idleSample with 50
// environments of one replica (default health_check) next to 50 plain
// containers of the same image with no health check, and with neither.
// The host is shared: the "nothing" figure shows the background.
func BenchmarkIdleCost(b *testing.B) {
	benchStack(b)
	const n = 50
	const idleSample = 20 * time.Second
	f := newBenchFixture(b)
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		nothing := hostBusy(idleSample)

		w := newTFWorkspace(b, f.manyConfig(b, n, ""))
		w.mustRun("apply", "-auto-approve", "-parallelism=20")
		time.Sleep(5 * time.Second) // the apply's own work settles
		envs := hostBusy(idleSample)
		w.mustRun("destroy", "-auto-approve", "-parallelism=20")

		ids := make([]string, n)
		for j := range ids {
			// The stack's Prometheus scrapes containers by this label every second: the plain
			// containers are scraped as the environments' are, so the difference is the provider's.
			id, err := f.engine.Create(ctx, docker.ContainerSpec{
				Name: fmt.Sprintf("%s-idle-%d", f.prefix, j), Image: f.repo + "@" + f.v1,
				Labels: map[string]string{naming.LabelKind: string(naming.KindApp)},
			})
			if err != nil {
				b.Fatal(err)
			}
			ids[j] = id
			if err := f.engine.Start(ctx, id); err != nil {
				b.Fatal(err)
			}
		}
		time.Sleep(5 * time.Second)
		plain := hostBusy(idleSample)
		for _, id := range ids {
			_ = f.engine.Remove(ctx, id)
		}
		b.ReportMetric(envs, "envs-busy-%")
		b.ReportMetric(plain, "plain-busy-%")
		b.ReportMetric(nothing, "nothing-busy-%")
		fmt.Printf("host CPU busy over %s: %d environments at rest %.1f%%, %d plain containers %.1f%%, neither %.1f%% (difference %.1f points)\n",
			idleSample, n, envs, n, plain, nothing, envs-plain)
	}
}

// hostBusy samples /proc/stat over d and returns the busy percentage of all CPUs.
func hostBusy(d time.Duration) float64 {
	read := func() (busy, total float64) {
		raw, _ := os.ReadFile("/proc/stat")
		line, _, _ := strings.Cut(string(raw), "\n")
		f := strings.Fields(line)[1:]
		for i, v := range f {
			x, _ := strconv.ParseFloat(v, 64)
			if i >= 8 { // guest time is counted in user already
				break
			}
			total += x
			if i != 3 && i != 4 { // idle, iowait
				busy += x
			}
		}
		return busy, total
	}
	b0, t0 := read()
	time.Sleep(d)
	b1, t1 := read()
	return 100 * (b1 - b0) / (t1 - t0)
}

// manyConfig is n environments with the default health_check behind one router, on its network.
func (f *benchFixture) manyConfig(b testing.TB, n int, dockerHost string) string {
	var sb strings.Builder
	if dockerHost != "" {
		fmt.Fprintf(&sb, "provider \"release\" {\n  docker_host = %q\n}\n", dockerHost)
	}
	for len(f.ports) < n {
		f.ports = append(f.ports, freePort(b))
	}
	fmt.Fprintf(&sb, "resource \"release_router\" \"edge\" {\n  name  = %q\n  image = %q\n  ports = [\n", f.router, f.haproxy)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&sb, "    { internal = %d, external = %d },\n", 10000+i, f.ports[i])
	}
	sb.WriteString("  ]\n}\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&sb, `resource "release_environment" "e%[1]d" {
  name        = "%[2]s-%[1]d"
  service     = "web"
  image       = "%[3]s@%[4]s"
  router      = release_router.edge.id
  listen_port = %[5]d
  network     = release_router.edge.network # 50 networks would exhaust Docker's default address pools
  stop_timeout = "2s"
}
`, i, f.prefix, f.repo, f.v1, 10000+i)
	}
	return sb.String()
}
