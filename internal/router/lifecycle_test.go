package router

import (
	"context"
	"errors"
	"fmt"
	"path"
	"reflect"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/releasekit/terraform-provider-release/internal/clock"
	"github.com/releasekit/terraform-provider-release/internal/clock/clocktest"
	"github.com/releasekit/terraform-provider-release/internal/docker"
	"github.com/releasekit/terraform-provider-release/internal/naming"
	"github.com/releasekit/terraform-provider-release/internal/probe"
)

// startingEngine is a Docker host on which a router container starts: its
// logs and state are what the n-th look after the start returns (the last
// one repeats). Methods the tests do not reach are left to the nil Engine.
type startingEngine struct {
	Engine
	clk *clocktest.Fake

	logs   []string
	states []string
	looks  int

	created   []docker.ContainerSpec
	started   []string
	removed   []string
	sinceSeen []time.Time

	// apps are the application containers on the host; networks the
	// networks that exist. calls records changes in order.
	apps     []docker.Container
	networks map[string]bool
	calls    []string
	// daemonSkew is how far the daemon's clock is from this one.
	daemonSkew time.Duration
}

func (e *startingEngine) List(_ context.Context, labels map[string]string) ([]docker.Container, error) {
	var out []docker.Container
	for _, c := range e.apps {
		match := true
		for k, v := range labels {
			if c.Labels[k] != v {
				match = false
			}
		}
		if match {
			out = append(out, c)
		}
	}
	return out, nil
}

func (e *startingEngine) NetworkLabels(_ context.Context, name string) (map[string]string, bool, error) {
	return nil, e.networks[name], nil
}

func (e *startingEngine) ConnectNetwork(_ context.Context, network, id string) error {
	e.calls = append(e.calls, "connect "+network+" "+id)
	return nil
}

func (e *startingEngine) DisconnectNetwork(_ context.Context, network, id string) error {
	e.calls = append(e.calls, "disconnect "+network+" "+id)
	return nil
}

func newStartingEngine() *startingEngine {
	return &startingEngine{clk: clocktest.New(epoch)}
}

func (e *startingEngine) Clock() clock.Clock { return e.clk }

// DaemonTime is the daemon's clock: the fake clock, as the logs' times are.
func (e *startingEngine) DaemonTime(context.Context) (time.Time, error) {
	return e.clk.Now().Add(e.daemonSkew), nil
}

func (e *startingEngine) EnsureImage(context.Context, string, string) error { return nil }

func (e *startingEngine) EnsureNetwork(context.Context, string, map[string]string) (bool, error) {
	return true, nil
}

func (e *startingEngine) EnsureVolume(context.Context, string, map[string]string) error { return nil }

func (e *startingEngine) Create(_ context.Context, spec docker.ContainerSpec) (string, error) {
	e.created = append(e.created, spec)
	return "router-1", nil
}

func (e *startingEngine) CopyFiles(context.Context, string, string, []docker.File) error { return nil }

func (e *startingEngine) Start(_ context.Context, id string) error {
	e.started = append(e.started, id)
	e.calls = append(e.calls, "start "+id)
	return nil
}

func (e *startingEngine) Remove(_ context.Context, id string) error {
	e.removed = append(e.removed, id)
	return nil
}

func (e *startingEngine) LogsSince(_ context.Context, _ string, since time.Time) (string, error) {
	e.sinceSeen = append(e.sinceSeen, since)
	return pick(e.logs, e.looks), nil
}

func (e *startingEngine) Inspect(_ context.Context, id string) (docker.Container, error) {
	state := pick(e.states, e.looks)
	if state == "" {
		state = "running"
	}
	e.looks++
	return docker.Container{ID: id, State: state}, nil
}

func pick(s []string, i int) string {
	if len(s) == 0 {
		return ""
	}
	return s[min(i, len(s)-1)]
}

const started = "[NOTICE]   (1) : haproxy version is 3.0.5\n[NOTICE]   (1) : New worker (8) forked\n[NOTICE]   (1) : Loading success.\n"

func TestWaitLoadedSuccess(t *testing.T) {
	e := newStartingEngine()
	e.logs = []string{"", "", started}
	if err := waitLoaded(context.Background(), e, e.clk, "router-1", epoch); err != nil {
		t.Fatal(err)
	}
	if waited := e.clk.Now().Sub(epoch); waited != 200*time.Millisecond {
		t.Errorf("waited %s, want two 100ms polls before the success", waited)
	}
}

func TestWaitLoadedTimeout(t *testing.T) {
	e := newStartingEngine()
	e.logs = []string{"[NOTICE]   (1) : haproxy version is 3.0.5\n"} // never loads, never exits
	began := time.Now()
	err := waitLoaded(context.Background(), e, e.clk, "router-1", epoch)
	if err == nil || !strings.Contains(err.Error(), "did not report a successful start within 30s") {
		t.Fatalf("waitLoaded = %v, want the 30s timeout", err)
	}
	if waited := e.clk.Now().Sub(epoch); waited != 30*time.Second {
		t.Errorf("gave up after %s of fake time, want 30s", waited)
	}
	if want := 300; e.looks != want {
		t.Errorf("looked %d times, want %d (every 100ms for 30s)", e.looks, want)
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Errorf("a 30s fake timeout took %s of real time", d)
	}
}

func TestWaitLoadedExited(t *testing.T) {
	e := newStartingEngine()
	e.logs = []string{"[ALERT]    (1) : config : parsing [/usr/local/etc/haproxy/release/base.cfg:1] : unknown keyword\n"}
	e.states = []string{"running", "exited"}
	err := waitLoaded(context.Background(), e, e.clk, "router-1", epoch)
	if err == nil || !strings.Contains(err.Error(), "exited at start") || !strings.Contains(err.Error(), "unknown keyword") {
		t.Fatalf("waitLoaded = %v, want the exit with HAProxy's last lines", err)
	}
	if waited := e.clk.Now().Sub(epoch); waited != 100*time.Millisecond {
		t.Errorf("waited %s, want one poll before the exit was seen", waited)
	}
}

func TestWaitLoadedCancelled(t *testing.T) {
	e := newStartingEngine()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := waitLoaded(ctx, e, e.clk, "router-1", epoch); !errors.Is(err, context.Canceled) {
		t.Fatalf("waitLoaded = %v, want context.Canceled", err)
	}
}

func TestCreateUsesTheEngineClock(t *testing.T) {
	e := newStartingEngine()
	e.logs = []string{started}
	id, err := Create(context.Background(), e, Spec{Name: "edge", Image: "haproxy:3.0", Network: "edge-net", MetricsPort: 9101}, "")
	if err != nil || id != "router-1" {
		t.Fatalf("Create = %q, %v", id, err)
	}
	// The start is read from a second before it, for clock differences with the daemon.
	if len(e.sinceSeen) == 0 || !e.sinceSeen[0].Equal(epoch.Add(-time.Second)) {
		t.Errorf("logs read since %v, want %v", e.sinceSeen, epoch.Add(-time.Second))
	}
}

// A remote daemon whose clock is 5 s behind this one: its logs are read
// from its own time, or the router's "loaded" line would be missed.
func TestCreateReadsLogsOnTheDaemonsClock(t *testing.T) {
	e := newStartingEngine()
	e.daemonSkew = -5 * time.Second
	e.logs = []string{started}
	if _, err := Create(context.Background(), e, Spec{Name: "edge", Image: "haproxy:3.0", Network: "edge-net", MetricsPort: 9101}, ""); err != nil {
		t.Fatal(err)
	}
	if want := epoch.Add(-6 * time.Second); len(e.sinceSeen) == 0 || !e.sinceSeen[0].Equal(want) {
		t.Errorf("logs read since %v, want %v (the daemon's time less a second)", e.sinceSeen, want)
	}
}

func TestCreateRemovesARouterThatNeverLoaded(t *testing.T) {
	e := newStartingEngine()
	_, err := Create(context.Background(), e, Spec{Name: "edge", Image: "haproxy:3.0", Network: "edge-net", MetricsPort: 9101}, "")
	if err == nil || !strings.Contains(err.Error(), "within 30s") {
		t.Fatalf("Create = %v, want the start timeout", err)
	}
	if len(e.removed) != 1 || e.removed[0] != "router-1" {
		t.Errorf("removed %v, want the router that never loaded", e.removed)
	}
}

func TestRepairTimesOutOnAStoppedRouter(t *testing.T) {
	e := newStartingEngine()
	c := &Controller{Docker: e, Clock: e.clk}
	err := Repair(context.Background(), e, c, Observed{Found: true, ID: "router-1", Running: false})
	if err == nil || !strings.Contains(err.Error(), "within 30s") {
		t.Fatalf("Repair = %v, want the start timeout", err)
	}
	if len(e.started) != 1 {
		t.Errorf("started %v, want the stopped router started once", e.started)
	}
	if waited := e.clk.Now().Sub(epoch); waited != 30*time.Second {
		t.Errorf("gave up after %s of fake time, want 30s", waited)
	}
}

func TestEngineClockDefaultsToWallClock(t *testing.T) {
	var e struct{ Engine }
	if _, ok := engineClock(e).(clock.Real); !ok {
		t.Errorf("engineClock of an engine without a clock = %T, want clock.Real", engineClock(e))
	}
}

// app is an application container of environment env, service web, routed
// through router edge, on network.
func app(env, network string) docker.Container {
	return docker.Container{
		ID: env + "-web-r1-1", State: "running", Networks: []string{network},
		Labels: map[string]string{
			naming.LabelManaged: "true", naming.LabelKind: string(naming.KindApp), naming.LabelRouter: "edge",
			naming.LabelEnvironment: env, naming.LabelService: "web",
		},
	}
}

func TestCreateJoinsTheNetworksOfRoutedEnvironments(t *testing.T) {
	e := newStartingEngine()
	e.logs = []string{started}
	e.networks = map[string]bool{"edge-net": true, "release-staging-web": true, "release-shared": true}
	e.apps = []docker.Container{
		app("staging", "release-staging-web"),
		app("qa", "release-shared"),
		app("gone", "release-gone-web"), // its network was removed: not joined
		app("own", "edge-net"),          // the router's own network: joined at create already
	}
	other := app("other", "release-other-web")
	other.Labels[naming.LabelRouter] = "another-router"
	e.apps = append(e.apps, other)
	if _, err := Create(context.Background(), e, Spec{Name: "edge", Image: "haproxy:3.0", Network: "edge-net", MetricsPort: 9101}, ""); err != nil {
		t.Fatal(err)
	}
	want := []string{"connect release-shared router-1", "connect release-staging-web router-1", "start router-1"}
	if !reflect.DeepEqual(e.calls, want) {
		t.Errorf("calls %q, want %q: the routed environments' networks joined before the start", e.calls, want)
	}
}

// recreateEngine is a startingEngine whose old router container is stopped:
// it keeps its networks but has no address on them.
type recreateEngine struct {
	*startingEngine
	old docker.Container
}

func (e *recreateEngine) Inspect(ctx context.Context, id string) (docker.Container, error) {
	if id == ContainerName("edge") {
		return e.old, nil
	}
	return e.startingEngine.Inspect(ctx, id)
}

func TestRecreateKeepsTheNetworksOfAStoppedRouter(t *testing.T) {
	e := &recreateEngine{startingEngine: newStartingEngine()}
	e.logs = []string{started}
	e.networks = map[string]bool{"edge-net": true, "release-prod-web": true}
	e.old = docker.Container{ID: "router-0", State: "exited", Networks: []string{"edge-net", "release-gone-web", "release-prod-web"}, IPs: map[string]string{}}
	if _, err := Recreate(context.Background(), e, Spec{Name: "edge", Image: "haproxy:3.1", Network: "edge-net", MetricsPort: 9101}, ""); err != nil {
		t.Fatal(err)
	}
	want := []string{"start router-1", "connect release-prod-web router-1"}
	if !reflect.DeepEqual(e.calls, want) {
		t.Errorf("calls %q, want %q", e.calls, want)
	}
}

// stoppedRouterEngine inspects router-1 as a stopped router on the given networks.
type stoppedRouterEngine struct {
	*startingEngine
	router docker.Container
}

func (e *stoppedRouterEngine) Inspect(ctx context.Context, id string) (docker.Container, error) {
	if id == ContainerName("edge") || (id == "router-1" && len(e.started) == 0) {
		return e.router, nil
	}
	return e.startingEngine.Inspect(ctx, id)
}

func TestObserveReportsNetworksThatNoLongerExist(t *testing.T) {
	e := &stoppedRouterEngine{startingEngine: newStartingEngine()}
	e.networks = map[string]bool{"edge-net": true, "release-b-web": true}
	e.router = docker.Container{ID: "router-1", State: "exited", Networks: []string{"edge-net", "release-a-web", "release-b-web"},
		Labels: map[string]string{naming.LabelRouterNetwork: "edge-net"}}
	o, err := Observe(context.Background(), e, "edge")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(o.MissingNetworks, []string{"release-a-web"}) {
		t.Errorf("MissingNetworks %q, want release-a-web", o.MissingNetworks)
	}
	if d := strings.Join(o.Drift, "; "); !strings.Contains(d, "exited") || !strings.Contains(d, "network release-a-web, which no longer exists") {
		t.Errorf("drift %q does not explain the stopped router and its missing network", d)
	}
}

// reloadingRouter is a router container whose configuration checks and
// reloads succeed at once.
type reloadingRouter struct {
	files    map[string][]byte
	signaled bool
}

func (r *reloadingRouter) CopyFiles(_ context.Context, _, _ string, files []docker.File) error {
	for _, f := range files {
		r.files[f.Path] = f.Content
	}
	return nil
}

func (r *reloadingRouter) ReadDir(context.Context, string, string) (map[string][]byte, error) {
	out := map[string][]byte{}
	for k, v := range r.files {
		out[k] = v
	}
	return out, nil
}

// Exec passes every check and carries out the probe's renames and removals.
func (r *reloadingRouter) Exec(_ context.Context, _ string, cmd []string) (int, string, error) {
	if len(cmd) > 1 && cmd[0] == probe.Path {
		switch cmd[1] {
		case "-rename":
			for i := 2; i+1 < len(cmd); i += 2 {
				r.files[path.Base(cmd[i+1])] = r.files[path.Base(cmd[i])]
				delete(r.files, path.Base(cmd[i]))
			}
		case "-remove":
			for _, p := range cmd[2:] {
				delete(r.files, path.Base(p))
			}
		}
	}
	return 0, "", nil
}

func (r *reloadingRouter) DaemonTime(context.Context) (time.Time, error) { return time.Now(), nil }

func (r *reloadingRouter) Architecture(context.Context) (string, error) { return "x86_64", nil }

func (r *reloadingRouter) Signal(context.Context, string, string) error {
	r.signaled = true
	return nil
}

func (r *reloadingRouter) Processes(context.Context, string) ([]string, error) {
	return []string{"haproxy -W", "haproxy -W"}, nil
}

func (r *reloadingRouter) LogsSince(context.Context, string, time.Time) (string, error) {
	if r.signaled {
		return "Reloading HAProxy\nLoading success.\n", nil
	}
	return "", nil
}

func TestRepairLeavesMissingNetworksAndClosesRoutesOfGoneEnvironments(t *testing.T) {
	e := &stoppedRouterEngine{startingEngine: newStartingEngine()}
	e.logs = []string{started}
	e.networks = map[string]bool{"edge-net": true, "release-b-web": true}
	e.apps = []docker.Container{app("b", "release-b-web")}
	e.router = docker.Container{ID: "router-1", State: "exited", Networks: []string{"edge-net", "release-a-web"},
		Labels: map[string]string{naming.LabelRouterNetwork: "edge-net", naming.LabelRouterMetricsPort: "9101"}}
	o, err := Observe(context.Background(), e, "edge")
	if err != nil {
		t.Fatal(err)
	}
	r := &reloadingRouter{files: map[string][]byte{BaseFile: []byte("old"), "route_a_web.cfg": []byte("route a"), "route_b_web.cfg": []byte("route b")}}
	c := &Controller{Docker: r, Clock: e.clk}
	if err := Repair(context.Background(), e, c, o); err != nil {
		t.Fatal(err)
	}
	want := []string{"disconnect release-a-web router-1", "connect release-b-web router-1", "start router-1"}
	if !reflect.DeepEqual(e.calls, want) {
		t.Errorf("calls %q, want %q: leave the missing network and join the routed one before the start", e.calls, want)
	}
	if len(r.files["route_a_web.cfg"]) != 0 || string(r.files["route_b_web.cfg"]) != "route b" {
		t.Errorf("routes a=%q b=%q, want the gone environment's emptied and the other's kept", r.files["route_a_web.cfg"], r.files["route_b_web.cfg"])
	}
	if string(r.files[BaseFile]) != string(RenderBase(Base{MetricsPort: 9101})) {
		t.Errorf("base %q, want it rewritten", r.files[BaseFile])
	}
}

// detachEngine is a router container for DetachStopped.
type detachEngine struct {
	c       docker.Container
	missing bool
	files   map[string][]byte
	calls   []string
}

func (d *detachEngine) Inspect(context.Context, string) (docker.Container, error) {
	if d.missing {
		return docker.Container{}, cerrdefs.ErrNotFound
	}
	return d.c, nil
}

func (d *detachEngine) CopyFiles(_ context.Context, id, dir string, files []docker.File) error {
	for _, f := range files {
		d.calls = append(d.calls, fmt.Sprintf("write %s/%s (%d bytes) in %s", dir, f.Path, len(f.Content), id))
	}
	return nil
}

func (d *detachEngine) DisconnectNetwork(_ context.Context, network, id string) error {
	d.calls = append(d.calls, "disconnect "+network+" "+id)
	return nil
}

func TestDetachStopped(t *testing.T) {
	d := &detachEngine{c: docker.Container{ID: "router-1", State: "exited", Networks: []string{"edge-net", "release-a-web"}}}
	if err := DetachStopped(context.Background(), d, "router-1", "release-a-web", "route_a_web.cfg"); err != nil {
		t.Fatal(err)
	}
	want := []string{"write " + ConfigDir + "/route_a_web.cfg (0 bytes) in router-1", "disconnect release-a-web router-1"}
	if !reflect.DeepEqual(d.calls, want) {
		t.Errorf("calls %q, want %q", d.calls, want)
	}

	d.calls = nil
	d.c.Networks = []string{"edge-net"} // detached already: a rerun only empties the file again
	if err := DetachStopped(context.Background(), d, "router-1", "release-a-web", "route_a_web.cfg"); err != nil || len(d.calls) != 1 {
		t.Errorf("a second DetachStopped = %v, calls %q", err, d.calls)
	}

	d.calls, d.c.State = nil, "running"
	if err := DetachStopped(context.Background(), d, "router-1", "release-a-web", "route_a_web.cfg"); !errors.Is(err, ErrRouterRunning) || len(d.calls) > 0 {
		t.Errorf("DetachStopped of a running router = %v, calls %q; want ErrRouterRunning and nothing changed", err, d.calls)
	}

	d.missing = true
	if err := DetachStopped(context.Background(), d, "router-1", "release-a-web", "route_a_web.cfg"); err != nil {
		t.Errorf("DetachStopped of a router that is gone = %v, want nothing to do", err)
	}
}

// volumeEngine records what Destroy removes.
type volumeEngine struct {
	*startingEngine
	volumes []string
	nets    []string
}

func (v *volumeEngine) RemoveVolume(_ context.Context, name string) error {
	v.volumes = append(v.volumes, name)
	return nil
}

func (v *volumeEngine) NetworkLabels(context.Context, string) (map[string]string, bool, error) {
	return map[string]string{naming.LabelRouter: "edge"}, true, nil
}

func (v *volumeEngine) RemoveNetwork(_ context.Context, name string) error {
	v.nets = append(v.nets, name)
	return nil
}

func TestDestroyKeepsRoutesWhileEnvironmentsRouteThroughTheRouter(t *testing.T) {
	v := &volumeEngine{startingEngine: newStartingEngine()}
	v.apps = []docker.Container{app("b", "release-b-web")}
	if err := Destroy(context.Background(), v, "edge", "edge-net"); err != nil {
		t.Fatal(err)
	}
	if len(v.removed) != 1 || len(v.volumes) != 0 || len(v.nets) != 0 {
		t.Errorf("removed %q, volumes %q, networks %q: want only the container, while environment b routes through it", v.removed, v.volumes, v.nets)
	}
	v.apps, v.removed = nil, nil
	if err := Destroy(context.Background(), v, "edge", "edge-net"); err != nil {
		t.Fatal(err)
	}
	if len(v.removed) != 1 || len(v.volumes) != 1 || len(v.nets) != 1 {
		t.Errorf("removed %q, volumes %q, networks %q: want all three once nothing routes through it", v.removed, v.volumes, v.nets)
	}
}
