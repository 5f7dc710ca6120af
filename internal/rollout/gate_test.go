package rollout

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/releasekit/terraform-provider-release/internal/clock/clocktest"
	"github.com/releasekit/terraform-provider-release/internal/docker"
	"github.com/releasekit/terraform-provider-release/internal/naming"
	"github.com/releasekit/terraform-provider-release/internal/probe"
)

func TestNextGateWait(t *testing.T) {
	for _, tc := range []struct {
		last, interval time.Duration
		passed         bool
		streak         int
		want           time.Duration
	}{
		{0, time.Second, false, 0, 20 * time.Millisecond},                     // after the first check
		{20 * time.Millisecond, time.Second, false, 0, 40 * time.Millisecond}, // doubling
		{320 * time.Millisecond, time.Second, false, 0, 640 * time.Millisecond},
		{640 * time.Millisecond, time.Second, false, 0, time.Second}, // capped at the interval
		{time.Second, time.Second, false, 0, time.Second},
		{time.Second, time.Second, true, 1, 20 * time.Millisecond},           // a first pass starts again
		{20 * time.Millisecond, time.Second, true, 2, 40 * time.Millisecond}, // passes in a row double
		{20 * time.Millisecond, 30 * time.Millisecond, false, 0, 30 * time.Millisecond},
		{0, 10 * time.Millisecond, false, 0, 10 * time.Millisecond}, // an interval below the first wait
		{0, 0, false, 0, 20 * time.Millisecond},
	} {
		if got := nextGateWait(tc.last, tc.interval, tc.passed, tc.streak); got != tc.want {
			t.Errorf("nextGateWait(%s, %s, passed %v, streak %d) = %s, want %s", tc.last, tc.interval, tc.passed, tc.streak, got, tc.want)
		}
	}
}

// gateHarness starts containers on a fake host and gates them on a fake clock.
type gateHarness struct {
	t     *testing.T
	clock *clocktest.Fake
	host  *fakeHost
	d     *Deployer
	start time.Time
	mu    sync.Mutex
	logs  []string
}

func newGateHarness(t *testing.T) *gateHarness {
	g := &gateHarness{t: t, clock: clocktest.New(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))}
	var events []string
	g.host = newFakeHost(t, g.clock, &events)
	g.d = &Deployer{Host: g.host, Clock: g.clock, Log: func(msg string, _ ...any) {
		g.mu.Lock() // the gate checks containers side by side
		defer g.mu.Unlock()
		g.logs = append(g.logs, msg)
	}}
	g.start = g.clock.Now()
	return g
}

func (g *gateHarness) run(spec Spec, replicas int) ([]docker.Container, error) {
	ctx := context.Background()
	if _, err := g.host.EnsureNetwork(ctx, spec.Network(), nil); err != nil {
		g.t.Fatal(err)
	}
	var ids []string
	for i := 0; i < replicas; i++ {
		cs := g.d.containerSpec(spec, 1, i+1, "stable", spec.ConfigHash(), nil, nil)
		id, err := g.host.Create(ctx, cs)
		if err != nil {
			g.t.Fatal(err)
		}
		if err := g.host.Start(ctx, id); err != nil {
			g.t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return g.d.waitHealthy(ctx, spec, ids)
}

// execTimes is when each probe ran, from the start, for one container.
func (g *gateHarness) execTimes(name string) []time.Duration {
	var out []time.Duration
	for _, e := range g.host.execs {
		if e.name == name {
			out = append(out, e.at.Sub(g.start))
		}
	}
	return out
}

func gateSpec(interval time.Duration, threshold int) Spec {
	s := webSpec("production", digest1)
	s.Health.Interval, s.Health.HealthyThreshold = interval, threshold
	return s
}

func ms(xs ...int) []time.Duration {
	out := make([]time.Duration, len(xs))
	for i, x := range xs {
		out[i] = time.Duration(x) * time.Millisecond
	}
	return out
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// A container that answers 1.5s after it started: checks at once, then
// 20ms later, doubling up to the 1s interval; it passes at the first check
// after it answers.
func TestGateBacksOffToTheInterval(t *testing.T) {
	g := newGateHarness(t)
	g.host.readyAfter = 1500 * time.Millisecond
	cs, err := g.run(gateSpec(time.Second, 1), 1)
	if err != nil {
		t.Fatal(err)
	}
	want := ms(0, 20, 60, 140, 300, 620, 1260, 2260)
	if got := g.execTimes(cs[0].Name); !equalDurations(got, want) {
		t.Errorf("checks at %v, want %v", got, want)
	}
	if got := g.clock.Now().Sub(g.start); got != 2260*time.Millisecond {
		t.Errorf("gated after %s, want 2.26s", got)
	}
	// The probe runs as Docker's health check ran it, without Docker's "CMD".
	if got, want := g.host.execs[0].cmd, probe.Command(8080, "/healthz", time.Second)[1:]; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("exec %q, want %q", got, want)
	}
}

// An app ready at once is gated in milliseconds, not after an interval.
func TestGatePassesAnAppReadyAtOnceInMilliseconds(t *testing.T) {
	g := newGateHarness(t)
	cs, err := g.run(gateSpec(5*time.Second, 1), 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if got := g.execTimes(c.Name); !equalDurations(got, ms(0)) {
			t.Errorf("%s: checks at %v, want one at once", c.Name, got)
		}
	}
	if got := g.clock.Now().Sub(g.start); got != 0 {
		t.Errorf("gated after %s, want at once", got)
	}
}

// HealthyThreshold passes in a row: the first pass starts the doubling
// again, so the passes follow each other closely.
func TestGateNeedsThresholdPassesInARow(t *testing.T) {
	g := newGateHarness(t)
	g.host.readyAfter = 100 * time.Millisecond
	cs, err := g.run(gateSpec(time.Second, 3), 1)
	if err != nil {
		t.Fatal(err)
	}
	// Fails at 0, 20, 60; passes at 140, 160, 200.
	if got, want := g.execTimes(cs[0].Name), ms(0, 20, 60, 140, 160, 200); !equalDurations(got, want) {
		t.Errorf("checks at %v, want %v", got, want)
	}
}

// A failure between passes starts the count again.
func TestGateFailureResetsTheStreak(t *testing.T) {
	g := newGateHarness(t)
	answers := []bool{false, true, false, true, true}
	script := &scriptedHost{fakeHost: g.host, answers: answers}
	g.d.Host = script
	_, err := g.run(gateSpec(time.Second, 2), 1)
	if err != nil {
		t.Fatal(err)
	}
	if script.n != len(answers) {
		t.Errorf("%d checks, want %d: two passes in a row only at the last", script.n, len(answers))
	}
	// 0 F, 20 P (wait 20), 40 F (wait 40), 80 P (wait 20), 100 P.
	if got, want := g.execTimes("production-web-r1-1"), ms(0, 20, 40, 80, 100); !equalDurations(got, want) {
		t.Errorf("checks at %v, want %v", got, want)
	}
}

// scriptedHost answers the probe from a script, then passes.
type scriptedHost struct {
	*fakeHost
	answers []bool
	n       int
}

func (s *scriptedHost) Exec(ctx context.Context, id string, cmd []string) (int, string, error) {
	if _, _, err := s.fakeHost.Exec(ctx, id, cmd); err != nil {
		return 0, "", err
	}
	s.n++
	if s.n <= len(s.answers) && !s.answers[s.n-1] {
		return 1, "GET /healthz: 503 Service Unavailable", nil
	}
	return 0, "200 OK", nil
}

// A container that never answers fails the gate at the start timeout with
// the last check's output and its logs; it was checked at most about once
// per interval after the first second.
func TestGateStartTimeout(t *testing.T) {
	g := newGateHarness(t)
	g.host.readyAfter = time.Hour
	spec := gateSpec(time.Second, 1)
	spec.Health.StartTimeout = 30 * time.Second
	_, err := g.run(spec, 1)
	var ue *UnhealthyError
	if !errors.As(err, &ue) {
		t.Fatalf("waitHealthy = %v, want *UnhealthyError", err)
	}
	if want := "not healthy after 30s; last check: release-probe: dial tcp 127.0.0.1:8080: connect: connection refused"; ue.Reason != want {
		t.Errorf("Reason = %q, want %q", ue.Reason, want)
	}
	if ue.Logs != strings.TrimSpace(g.host.logs) {
		t.Errorf("Logs = %q, want the container's last lines", ue.Logs)
	}
	if got := g.clock.Now().Sub(g.start); got != 30*time.Second {
		t.Errorf("gave up after %s, want 30s", got)
	}
	// 7 checks in the first 1.26s, then one a second.
	if n := len(g.execTimes("production-web-r1-1")); n < 30 || n > 37 {
		t.Errorf("%d checks in 30s, want about 7 + 29", n)
	}
}

// A container that exits fails the gate at once, with its logs.
func TestGateContainerExits(t *testing.T) {
	g := newGateHarness(t)
	g.host.behaviour = func(docker.ContainerSpec) string { return exits }
	_, err := g.run(gateSpec(time.Second, 1), 2)
	var ue *UnhealthyError
	if !errors.As(err, &ue) || ue.Reason != "it exited" || ue.Logs == "" {
		t.Fatalf("waitHealthy = %#v, want an *UnhealthyError saying it exited, with logs", err)
	}
	if got := g.clock.Now().Sub(g.start); got != 0 {
		t.Errorf("gave up after %s, want at once", got)
	}
	if len(g.host.execs) != 0 {
		t.Errorf("%d probes run in an exited container", len(g.host.execs))
	}
}

// Containers are gated side by side: a slow one does not hold a fast one's
// checks back, and the gate ends when the slowest passes.
func TestGateContainersSideBySide(t *testing.T) {
	g := newGateHarness(t)
	slow := &slowReplicaHost{fakeHost: g.host}
	g.d.Host = slow
	cs, err := g.run(gateSpec(time.Second, 1), 2)
	if err != nil {
		t.Fatal(err)
	}
	if got := g.execTimes(cs[0].Name); !equalDurations(got, ms(0)) {
		t.Errorf("fast replica checked at %v, want once at once", got)
	}
	if got, want := g.execTimes(cs[1].Name), ms(0, 20, 60, 140); !equalDurations(got, want) {
		t.Errorf("slow replica checked at %v, want %v", got, want)
	}
	if got := g.clock.Now().Sub(g.start); got != 140*time.Millisecond {
		t.Errorf("gated after %s, want 140ms", got)
	}
}

// slowReplicaHost: replica 2 answers only from 100ms on.
type slowReplicaHost struct{ *fakeHost }

func (s *slowReplicaHost) Exec(ctx context.Context, id string, cmd []string) (int, string, error) {
	code, out, err := s.fakeHost.Exec(ctx, id, cmd)
	s.mu.Lock()
	fc := s.containers[id]
	s.mu.Unlock()
	if err == nil && strings.HasSuffix(fc.c.Name, "-2") && s.clock.Now().Sub(fc.startedAt) < 100*time.Millisecond {
		return 1, "connection refused", nil
	}
	return code, out, err
}

// A container created by an earlier version carries a Docker HEALTHCHECK
// (and the probe): it is gated the same way, and its Docker health status
// ("healthy" once Docker's checks pass) is no obstacle.
func TestGateOldContainerWithDockerHealthCheck(t *testing.T) {
	g := newGateHarness(t)
	ctx := context.Background()
	spec := gateSpec(time.Second, 1)
	if _, err := g.host.EnsureNetwork(ctx, spec.Network(), nil); err != nil {
		t.Fatal(err)
	}
	cs := g.d.containerSpec(spec, 1, 1, "stable", spec.ConfigHash(), nil, nil)
	cs.Health = &docker.HealthCheck{Test: probe.Command(8080, "/healthz", time.Second), Interval: time.Second, Retries: 3}
	id, _ := g.host.Create(ctx, cs)
	if err := g.host.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	g.clock.Advance(3 * time.Second) // Docker's checks have run
	out, err := g.d.waitHealthy(ctx, spec, []string{id})
	if err != nil {
		t.Fatal(err)
	}
	if out[0].Health != "healthy" || len(g.host.execs) != 1 {
		t.Errorf("health %q after %d probes, want Docker's healthy and one probe", out[0].Health, len(g.host.execs))
	}
	// Such a container can be resumed as a canary: only an unhealthy one cannot.
	old := out[0]
	old.Health = "unhealthy"
	if !usable(out[0]) || usable(old) {
		t.Errorf("usable(healthy) = %v, usable(unhealthy) = %v", usable(out[0]), usable(old))
	}
}

// proberRoutes is a router that runs the probe itself (router.Controller
// does): each check is answered as the container's own exec would be, and
// recorded with the router and address it was made from.
type proberRoutes struct {
	*fakeRoutes
	mu     sync.Mutex
	probes []string // "<router> <address> <path>"
}

func (p *proberRoutes) ProbeFrom(ctx context.Context, routerID, addr, path string, timeout time.Duration) (int, string, error) {
	p.mu.Lock()
	p.probes = append(p.probes, routerID+" "+addr+" "+path)
	p.mu.Unlock()
	cs, err := p.host.List(ctx, map[string]string{naming.LabelManaged: "true"})
	if err != nil {
		return 0, "", err
	}
	for _, c := range cs {
		for _, ip := range c.IPs {
			if strings.HasPrefix(addr, ip+":") {
				return p.host.Exec(ctx, c.ID, probe.RemoteArgs(addr, path, timeout))
			}
		}
	}
	return 1, "unhealthy: dial tcp " + addr + ": connect: no route to host", nil
}

// Where the router can run the probe, the gate checks each new container
// from the router, at the address its route gives it, and nothing is
// placed in or run inside the containers.
func TestGateChecksFromTheRouter(t *testing.T) {
	h := newHarness(t)
	p := &proberRoutes{fakeRoutes: h.routes}
	h.d.Routes = p
	h.host.readyAfter = 30 * time.Millisecond
	spec := webSpec("production", digest1)
	if _, err := h.d.Deploy(h.ctx, spec); err != nil {
		t.Fatal(err)
	}
	for _, cs := range h.host.creates {
		if len(cs.Files) != 0 {
			t.Errorf("%s: files %v placed in the container, want none (the router checks it)", cs.Name, cs.Files)
		}
	}
	cs, err := h.host.List(h.ctx, map[string]string{naming.LabelEnvironment: "production", naming.LabelKind: string(naming.KindApp)})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		want := "router-1 " + c.IPs[spec.Network()] + ":8080 /healthz"
		n := 0
		for _, got := range p.probes {
			if got == want {
				n++
			}
		}
		// Fails at 0 and 20ms, passes at 40 and 60 (healthy_threshold 2).
		if n != 4 {
			t.Errorf("%s: %d checks from the router as %q, want 4; all checks: %q", c.Name, n, want, p.probes)
		}
	}
	for _, e := range h.host.execs {
		if len(e.cmd) > 0 && e.cmd[0] == probe.Path {
			t.Errorf("%s: the probe was exec'd in the container (%q)", e.name, e.cmd)
		}
	}
}
