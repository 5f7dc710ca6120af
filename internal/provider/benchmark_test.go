package provider

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/releasekit/terraform-provider-release/internal/docker"
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
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// The fixed cost of any apply: terraform, the provider's start, refresh and plan.
		start := time.Now()
		w.mustRun("apply", "-auto-approve")
		noops = append(noops, time.Since(start).Seconds())

		w.write(f.config(b, i+2)) // a new setting each time: a new revision, new containers
		start = time.Now()
		w.mustRun("apply", "-auto-approve")
		apply := time.Since(start).Seconds()
		h, hc := f.healthySeconds(b, i+2)
		applies, healthy = append(applies, apply), append(healthy, h)
		overheads, overheadsCreated = append(overheads, apply-h), append(overheadsCreated, apply-hc)
		b.Logf("switch %d: apply %.2fs; container start to healthy %.2fs (create to healthy %.2fs); overhead %.2fs (%.2fs); no-op apply %.2fs",
			i+1, apply, h, hc, apply-h, apply-hc, noops[i])
	}
	b.StopTimer()
	b.ReportMetric(median(overheads), "overhead-s")
	b.ReportMetric(median(overheadsCreated), "overhead-from-create-s")
	b.ReportMetric(median(applies), "apply-s")
	b.ReportMetric(median(healthy), "healthy-s")
	b.ReportMetric(median(noops), "noop-apply-s")
	fmt.Printf("switch overhead over %d switches (medians): %.2fs = apply %.2fs - container start to healthy %.2fs; "+
		"%.2fs counting from the container's creation; a no-op apply takes %.2fs\n",
		b.N, median(overheads), median(applies), median(healthy), median(overheadsCreated), median(noops))
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
// start (and from its creation) to its first passing health check, as Docker recorded it.
func (f *benchFixture) healthySeconds(b *testing.B, revision int) (float64, float64) {
	ctx := context.Background()
	cs, err := f.engine.List(ctx, map[string]string{naming.LabelEnvironment: f.prefix, naming.LabelRevision: strconv.Itoa(revision)})
	if err != nil || len(cs) == 0 {
		b.Fatalf("no container of revision %d: %v", revision, err)
	}
	cli, err := docker.NewConnector(docker.ConfigFromEnv()).Client(ctx)
	if err != nil {
		b.Fatal(err)
	}
	res, err := cli.ContainerInspect(ctx, cs[0].ID, client.ContainerInspectOptions{})
	if err != nil {
		b.Fatal(err)
	}
	st := res.Container.State
	started, _ := time.Parse(time.RFC3339Nano, st.StartedAt)
	created, _ := time.Parse(time.RFC3339Nano, res.Container.Created)
	if st.Health == nil {
		b.Fatal("the container has no health record")
	}
	for _, l := range st.Health.Log {
		if l.ExitCode == 0 {
			return l.End.Sub(started).Seconds(), l.End.Sub(created).Seconds()
		}
	}
	b.Fatal("no passing health check recorded")
	return 0, 0
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

// sampleProviderRSS polls the resident memory of running provider processes
// and returns a function that stops and reports the peak in bytes.
func sampleProviderRSS() func() float64 {
	var peak atomic.Int64
	done := make(chan struct{})
	go func() {
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
				comm, _ := os.ReadFile("/proc/" + e.Name() + "/comm")
				if !strings.HasPrefix(strings.TrimSpace(string(comm)), "terraform-provi") {
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
	return func() float64 { close(done); return float64(peak.Load()) }
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
